package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/beacon-dns/beacon/raftstore"
)

var snapshotCommand = &command{
	name:     "snapshot",
	synopsis: "Save, restore and inspect snapshots of the servers' state",
	subs:     []*command{snapshotSaveCommand, snapshotRestoreCommand, snapshotInspectCommand},
}

// inspectArchive verifies a snapshot archive and describes it, with the
// archive reader a restore uses.
func inspectArchive(r io.Reader) (raftstore.SnapshotInfo, error) {
	return raftstore.InspectSnapshot(r)
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

var snapshotSaveCommand = &command{
	name:     "save",
	synopsis: "Save a snapshot of the state to FILE, and verify it",
	help:     "beacon snapshot save [options] FILE",
	http:     true,
	stream:   true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		file, code := fileArg(e, args)
		if code != exitOK {
			return code
		}
		c := e.client
		archive, _, err := c.Snapshot().Save(nil)
		if err != nil {
			return fail(e, "saving snapshot", err)
		}
		defer archive.Close()
		var index uint64
		err = writeFileAtomically(file, func(f *os.File) error {
			if _, err := io.Copy(f, archive); err != nil {
				return fmt.Errorf("receiving the snapshot: %w", err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("verifying the snapshot: %w", err)
			}
			info, err := inspectArchive(f)
			if err != nil {
				return fmt.Errorf("verifying the snapshot: %w", err)
			}
			index = info.Index
			return nil
		})
		if err != nil {
			return fail(e, "saving snapshot", err)
		}
		fmt.Fprintf(e.stdout, "Saved and verified snapshot to index %d\n", index)
		return exitOK
	},
}

// writeFileAtomically has write fill a new file next to file (mode 0600),
// syncs it, and only then puts it in file's place: a failed write leaves
// no file, and never half of one.
func writeFileAtomically(file string, write func(f *os.File) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	ok = true
	return nil
}

var snapshotRestoreCommand = &command{
	name:     "restore",
	synopsis: "Restore the state from a snapshot FILE (replaces all of it)",
	help:     "beacon snapshot restore [options] FILE",
	http:     true,
	stream:   true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		file, code := fileArg(e, args)
		if code != exitOK {
			return code
		}
		c := e.client
		f, err := os.Open(file)
		if err != nil {
			return fail(e, "opening snapshot", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return fail(e, "opening snapshot", err)
		}
		if !st.Mode().IsRegular() {
			return fail(e, "opening snapshot", fmt.Errorf("%s is not a regular file", file))
		}
		if err := c.Snapshot().Restore(nil, sizedBody{ReadCloser: f, size: st.Size()}); err != nil {
			return fail(e, "restoring snapshot", err)
		}
		fmt.Fprintln(e.stdout, "Restored snapshot")
		return exitOK
	},
}

var snapshotInspectCommand = &command{
	name:     "inspect",
	synopsis: "Verify a snapshot FILE and describe it (read locally; no agent needed)",
	help:     "beacon snapshot inspect FILE",
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		file, code := fileArg(e, args)
		if code != exitOK {
			return code
		}
		f, err := os.Open(file)
		if err != nil {
			return fail(e, "opening snapshot", err)
		}
		defer f.Close()
		info, err := inspectArchive(f)
		if err != nil {
			return fail(e, "inspecting snapshot", err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintf(tw, "ID\t%s\nSize\t%d\nIndex\t%d\nTerm\t%d\nVersion\t%d\n", info.ID, info.Size, info.Index, info.Term, info.Version)
		fmt.Fprintln(tw) // ends the first block of columns
		fmt.Fprintln(tw, "Table\tRows")
		for _, t := range info.Tables {
			fmt.Fprintf(tw, "%s\t%d\n", t.Table, t.Rows)
		}
		if err := tw.Flush(); err != nil {
			return fail(e, "writing output", err)
		}
		return exitOK
	},
}
