package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
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
		if err := e.client.Snapshot().Restore(nil, sizedBody{ReadCloser: f, size: st.Size()}); err != nil {
			return e.fail("Error restoring snapshot: %v", err)
		}
		fmt.Fprintln(e.stdout, "Restored snapshot")
		return exitOK
	},
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
