package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// WriteMsg writes v as JSON behind its length (4 bytes, big-endian).
func WriteMsg(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %T: %w", v, err)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err = w.Write(body)
	return err
}

// ReadMsg reads a message WriteMsg wrote into v; a message longer than
// limit is refused before it is read.
func ReadMsg(r io.Reader, v any, limit uint32) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > limit {
		return fmt.Errorf("message of %d bytes exceeds the %d limit", n, limit)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// FrameHeaderSize is the size of a frame's header:
//
//	[kind u8][index u64][length u32]
const FrameHeaderSize = 13

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, kind byte, index uint64, payload []byte) error {
	var hdr [FrameHeaderSize]byte
	hdr[0] = kind
	binary.BigEndian.PutUint64(hdr[1:9], index)
	binary.BigEndian.PutUint32(hdr[9:13], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// ReadFrame reads one frame; a payload longer than limit is refused before
// it is read. The payload is read into buf when it fits, so a caller that
// passes buf must not keep the payload past its next read.
func ReadFrame(r io.Reader, buf []byte, limit uint32) (kind byte, index uint64, payload []byte, err error) {
	var hdr [FrameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[9:13])
	if n > limit {
		return 0, 0, nil, fmt.Errorf("frame of %d bytes exceeds the %d limit", n, limit)
	}
	if int(n) <= cap(buf) {
		payload = buf[:n]
	} else {
		payload = make([]byte, n)
	}
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, 0, nil, err
	}
	return hdr[0], binary.BigEndian.Uint64(hdr[1:9]), payload, nil
}

// The frame kinds of a chunked stream. Their values are on the wire between
// beacons of different versions: never change them.
const (
	// FrameChunk carries the next bytes of the stream.
	FrameChunk byte = 3
	// FrameEnd ends the stream; its index is the sender's to give.
	FrameEnd byte = 4
)

// ChunkSize is the payload of a full chunk frame.
const ChunkSize = 64 << 10

// ChunkWriter cuts what is written to it into FrameChunk frames of ChunkSize
// bytes; Flush sends the last, shorter one. It does not write FrameEnd: the
// sender does, with the index it means.
type ChunkWriter struct {
	w io.Writer
	// beforeFrame, when set, runs before each frame is written (to move a
	// write deadline, say).
	beforeFrame func()
	buf         []byte
}

// NewChunkWriter returns a ChunkWriter on w; beforeFrame may be nil.
func NewChunkWriter(w io.Writer, beforeFrame func()) *ChunkWriter {
	return &ChunkWriter{w: w, beforeFrame: beforeFrame, buf: make([]byte, 0, ChunkSize)}
}

func (c *ChunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), ChunkSize-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == ChunkSize {
			if err := c.Flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// Flush writes what is buffered as a chunk frame, if anything is.
func (c *ChunkWriter) Flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	if c.beforeFrame != nil {
		c.beforeFrame()
	}
	err := WriteFrame(c.w, FrameChunk, 0, c.buf)
	c.buf = c.buf[:0]
	return err
}

// ChunkReader reads the payloads of FrameChunk frames up to a FrameEnd
// frame, where it returns io.EOF. A stream cut before its end is an
// io.ErrUnexpectedEOF; a frame of another kind is an error, unless skip
// says to pass over it.
type ChunkReader struct {
	r           io.Reader
	skip        func(kind byte) bool
	beforeFrame func()
	rest        []byte
	done        bool
}

// NewChunkReader returns a ChunkReader on r; skip and beforeFrame (run
// before each frame is read, to move a read deadline, say) may be nil.
func NewChunkReader(r io.Reader, skip func(kind byte) bool, beforeFrame func()) *ChunkReader {
	return &ChunkReader{r: r, skip: skip, beforeFrame: beforeFrame}
}

func (c *ChunkReader) Read(p []byte) (int, error) {
	for len(c.rest) == 0 {
		if c.done {
			return 0, io.EOF
		}
		if c.beforeFrame != nil {
			c.beforeFrame()
		}
		kind, _, payload, err := ReadFrame(c.r, nil, ChunkSize)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		switch {
		case kind == FrameChunk:
			c.rest = payload
		case kind == FrameEnd:
			c.done = true
		case c.skip != nil && c.skip(kind):
		default:
			return 0, fmt.Errorf("unexpected frame kind %d in a chunked stream", kind)
		}
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

// DeadlineConn moves the connection's read (write) deadline timeout ahead
// before every read (write): a transfer may take as long as it keeps
// making progress.
type DeadlineConn struct {
	net.Conn
	Timeout time.Duration
}

func (c DeadlineConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.Timeout))
	return c.Conn.Read(p)
}

func (c DeadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.Timeout))
	return c.Conn.Write(p)
}
