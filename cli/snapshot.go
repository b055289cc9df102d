package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/beacon-dns/beacon/internal/atomicfile"
	"github.com/beacon-dns/beacon/snapshot"
)

var snapshotCommand = &command{name: "snapshot", synopsis: "Save, restore and inspect snapshots of the servers' state",
	subs: []*command{snapshotInspectCommand, snapshotRestoreCommand, snapshotSaveCommand},
}

// fileArg returns the one FILE argument of a snapshot command.
func fileArg(e *env, args []string) (string, int) {
	switch len(args) {
	case 1:
		return args[0], exitOK
	case 0:
		return "", usageErr(e, "the snapshot file is missing")
	}
	return "", usageErr(e, "one snapshot file, not %d arguments (options go before the file)", len(args))
}

var snapshotSaveCommand = &command{name: "save", synopsis: "Save a snapshot of the state to FILE, and verify it",
	help: "beacon snapshot save [options] FILE", http: true, stream: true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		file, code := fileArg(e, args)
		if code != exitOK {
			return code
		}
		archive, _, err := e.client.Snapshot().Save(nil)
		if err != nil {
			return e.fail("Error saving snapshot: %v", err)
		}
		defer archive.Close()
		var index uint64
		// Verified before it takes file's place: a failed save leaves no
		// file, and never half of one.
		err = atomicfile.Write(file, 0o600, func(f *os.File) error {
			if _, err := io.Copy(f, archive); err != nil {
				return fmt.Errorf("receiving the snapshot: %w", err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("verifying the snapshot: %w", err)
			}
			info, err := snapshot.Inspect(f)
			if err != nil {
				return fmt.Errorf("verifying the snapshot: %w", err)
			}
			index = info.Index
			return nil
		})
		if err != nil {
			return e.fail("Error saving snapshot: %v", err)
		}
		fmt.Fprintf(e.stdout, "Saved and verified snapshot to index %d\n", index)
		return exitOK
	},
}

var snapshotRestoreCommand = &command{name: "restore", http: true, stream: true,
	synopsis: "Restore the state from a snapshot FILE (replaces all of it)",
	help:     "beacon snapshot restore [options] FILE",
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		file, code := fileArg(e, args)
		if code != exitOK {
			return code
		}
		f, err := os.Open(file)
		if err != nil {
			return e.fail("Error opening snapshot: %v", err)
		}
		defer f.Close()
		st, err := f.Stat()
		switch {
		case err != nil:
			return e.fail("Error opening snapshot: %v", err)
		case !st.Mode().IsRegular():
			return e.fail("Error opening snapshot: %s is not a regular file", file)
		}
		// The agent answers a Consul snapshot's restore with what it
		// restored and skipped, a body the api package drops: take it
		// on its way.
		var report []byte
		e.client.agent.answered = func(resp *http.Response) {
			if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				report, _ = io.ReadAll(io.LimitReader(resp.Body, maxRestoreReport))
				resp.Body.Close()
				resp.Body = io.NopCloser(bytes.NewReader(report))
			}
		}
		if err := e.client.Snapshot().Restore(nil, sizedBody{ReadCloser: f, size: st.Size()}); err != nil {
			return e.fail("Error restoring snapshot: %v", err)
		}
		fmt.Fprintln(e.stdout, "Restored snapshot")
		var consul snapshot.ConsulReport
		if len(report) > 0 && json.Unmarshal(report, &consul) == nil {
			return writeOutput(e, consulRestored(&consul))
		}
		return exitOK
	},
}

// maxRestoreReport bounds the answer to a restore the CLI reads.
const maxRestoreReport = 1 << 20

// consulRestored says what the restore of a Consul snapshot took and
// skipped.
func consulRestored(r *snapshot.ConsulReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Restored a Consul snapshot (index %d):", r.Index)
	sep := " "
	for _, t := range r.Tables {
		if t.Rows > 0 && t.Table != "index" {
			fmt.Fprintf(&b, "%s%s %d", sep, t.Table, t.Rows)
			sep = ", "
		}
	}
	if sep == " " {
		b.WriteString(" nothing")
	}
	b.WriteString("\n")
	b.WriteString(skippedTable(r.Skipped))
	return b.String()
}

// skippedTable lists the records a restore of a Consul snapshot skips.
func skippedTable(skipped []snapshot.SkippedRecords) string {
	if len(skipped) == 0 {
		return "Skipped nothing.\n"
	}
	var b strings.Builder
	b.WriteString("Skipped (not restored):\n")
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, " Type\tCount\tReason\n")
	for _, s := range skipped {
		fmt.Fprintf(tw, " %s\t%d\t%s\n", s.Type, s.Count, s.Reason)
	}
	tw.Flush()
	return b.String()
}

// consulInspected describes a Consul snapshot as `consul snapshot inspect`
// does (its metadata, then its records by type, largest first), then what
// a restore into beacon makes of it.
func consulInspected(info *snapshot.Info) string {
	r := info.Consul
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 8, 8, 6, ' ', 0)
	fmt.Fprintf(tw, " ID\t%s\n Size\t%d\n Index\t%d\n Term\t%d\n Version\t%d\n", r.ID, r.Size, r.Index, r.Term, r.Version)
	tw.Flush()
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 8, 8, 6, ' ', 0)
	fmt.Fprintf(tw, " Type\tCount\tSize\t\n ----\t----\t----\t\n")
	for _, s := range r.Records {
		fmt.Fprintf(tw, " %s\t%d\t%s\t\n", s.Type, s.Count, byteSize(s.Size))
	}
	fmt.Fprintf(tw, " ----\t----\t----\t\n Total\t\t%s\t\n", byteSize(r.Size))
	tw.Flush()
	b.WriteString("\nA Consul snapshot; restored into beacon it holds:\n")
	tw = tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, " Table\tRows\n")
	for _, t := range r.Tables {
		fmt.Fprintf(tw, " %s\t%d\n", t.Table, t.Rows)
	}
	tw.Flush()
	b.WriteString("\n")
	b.WriteString(skippedTable(r.Skipped))
	// tabwriter pads the last column of the records too: trim it.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// byteSize is a size as `consul snapshot inspect` prints one: 512B, 1.2KB.
func byteSize(n int64) string {
	if n == 0 {
		return "0"
	}
	v, unit := float64(n), "B"
	for _, u := range []string{"KB", "MB", "GB", "TB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") + unit
}

var snapshotInspectCommand = &command{name: "inspect", help: "beacon snapshot inspect FILE",
	synopsis: "Verify a snapshot FILE and describe it (read locally; no agent needed)",
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		file, code := fileArg(e, args)
		if code != exitOK {
			return code
		}
		f, err := os.Open(file)
		if err != nil {
			return e.fail("Error opening snapshot: %v", err)
		}
		defer f.Close()
		info, err := snapshot.Inspect(f)
		if err != nil {
			return e.fail("Error inspecting snapshot: %v", err)
		}
		if info.Consul != nil {
			return writeOutput(e, consulInspected(&info))
		}
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		// A blank line ends the first block of columns.
		fmt.Fprintf(tw, "ID\t%s\nSize\t%d\nIndex\t%d\nTerm\t%d\nVersion\t%d\n\nTable\tRows\n", info.ID, info.Size,
			info.Index, info.Term, info.Version)
		for _, t := range info.Tables {
			fmt.Fprintf(tw, "%s\t%d\n", t.Table, t.Rows)
		}
		tw.Flush()
		return writeOutput(e, b.String())
	},
}
