package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestMsgRoundTripAndLimit(t *testing.T) {
	type msg struct {
		Method string
		N      int
	}
	var buf bytes.Buffer
	if err := WriteMsg(&buf, msg{"Apply", 7}); err != nil {
		t.Fatal(err)
	}
	raw := append([]byte(nil), buf.Bytes()...)
	var got msg
	if err := ReadMsg(&buf, &got, 1<<10); err != nil || got != (msg{"Apply", 7}) {
		t.Fatalf("ReadMsg = %+v, %v", got, err)
	}
	if err := ReadMsg(bytes.NewReader(raw), &got, 4); err == nil || !strings.Contains(err.Error(), "exceeds the 4 limit") {
		t.Errorf("ReadMsg over the limit = %v, want a refusal", err)
	}
	if err := ReadMsg(bytes.NewReader(raw[:len(raw)-1]), &got, 1<<10); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadMsg of a cut message = %v, want io.ErrUnexpectedEOF", err)
	}
	if err := WriteMsg(io.Discard, func() {}); err == nil {
		t.Error("WriteMsg of a func: no error")
	}
}

func TestFrameRoundTripAndLimit(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, 9, 1<<40, []byte("payload")); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != FrameHeaderSize+len("payload") {
		t.Fatalf("frame is %d bytes", buf.Len())
	}
	raw := append([]byte(nil), buf.Bytes()...)
	scratch := make([]byte, 0, 64)
	kind, index, payload, err := ReadFrame(&buf, scratch, 1<<10)
	if err != nil || kind != 9 || index != 1<<40 || string(payload) != "payload" {
		t.Fatalf("ReadFrame = %d %d %q %v", kind, index, payload, err)
	}
	if &payload[:1][0] != &scratch[:1][0] {
		t.Error("a payload that fits was not read into the caller's buffer")
	}
	if _, _, _, err := ReadFrame(bytes.NewReader(raw), nil, 3); err == nil || !strings.Contains(err.Error(), "exceeds the 3 limit") {
		t.Errorf("ReadFrame over the limit = %v", err)
	}
}

func TestChunkedStream(t *testing.T) {
	for _, size := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 17} {
		data := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		var wire bytes.Buffer
		frames := 0
		cw := NewChunkWriter(&wire, func() { frames++ })
		// Odd write sizes, so chunks do not line up with writes.
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1000)
			if _, err := cw.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := cw.Flush(); err != nil {
			t.Fatal(err)
		}
		if want := (size + ChunkSize - 1) / ChunkSize; frames != want {
			t.Errorf("size %d: %d chunk frames, want %d", size, frames, want)
		}
		if err := WriteFrame(&wire, FrameEnd, 0, nil); err != nil {
			t.Fatal(err)
		}
		wire.WriteString("after the end")
		got, err := io.ReadAll(NewChunkReader(&wire, nil, nil))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("size %d: read back %d bytes, %v", size, len(got), err)
		}
		if wire.String() != "after the end" {
			t.Errorf("size %d: the reader read past the end frame", size)
		}
	}
}

func TestChunkReaderRefusals(t *testing.T) {
	frame := func(kind byte, payload string) []byte {
		var b bytes.Buffer
		_ = WriteFrame(&b, kind, 0, []byte(payload))
		return b.Bytes()
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	const heartbeat = 5
	tests := []struct {
		name    string
		stream  []byte
		skip    func(byte) bool
		want    string
		wantErr string
	}{
		{"cut before the end", frame(FrameChunk, "abc"), nil, "", io.ErrUnexpectedEOF.Error()},
		{"cut inside a frame", frame(FrameChunk, "abc")[:FrameHeaderSize+1], nil, "", io.ErrUnexpectedEOF.Error()},
		{"another kind", cat(frame(FrameChunk, "a"), frame(heartbeat, "{}"), frame(FrameEnd, "")), nil, "", "unexpected frame kind 5"},
		{"a kind skipped", cat(frame(FrameChunk, "a"), frame(heartbeat, "{}"), frame(FrameChunk, "b"), frame(FrameEnd, "")),
			func(k byte) bool { return k == heartbeat }, "ab", ""},
		{"a chunk over the limit", frame(FrameChunk, strings.Repeat("x", ChunkSize+1)), nil, "", "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := io.ReadAll(NewChunkReader(bytes.NewReader(tc.stream), tc.skip, nil))
			if tc.wantErr == "" {
				if err != nil || string(got) != tc.want {
					t.Errorf("read %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDeadlineConnTimesOutAnIdlePeer(t *testing.T) {
	raw, peer := net.Pipe()
	defer raw.Close()
	defer peer.Close()
	conn := DeadlineConn{Conn: raw, Timeout: 50 * time.Millisecond}
	_, err := conn.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read from a silent peer = %v, want a timeout", err)
	}
	// The deadline moves with each call: a later write times out too,
	// rather than failing at once on the read's expired deadline.
	start := time.Now()
	if _, err := conn.Write([]byte("x")); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Write to a peer that does not read = %v, want a timeout", err)
	}
	if d := time.Since(start); d < 25*time.Millisecond || d > 5*time.Second {
		t.Errorf("the write timed out after %s, want about 50ms", d)
	}
}
