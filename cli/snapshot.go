package cli

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/beacon-dns/beacon/snapshot"
)

var snapshotCommand = &command{
	name:     "snapshot",
	synopsis: "Save, restore and inspect snapshots of the servers' state",
	subs:     []*command{snapshotSaveCommand, snapshotRestoreCommand, snapshotInspectCommand},
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
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		file, code := fileArg(e, args)
		if code != exitOK {
			return code
		}
		c, err := newClient(e, fs, true)
		if err != nil {
			return usageErr(e, "%v", err)
		}
		resp, cancel, err := c.do(request{method: http.MethodGet, path: "/v1/snapshot"})
		if err != nil {
			return fail(e, "saving snapshot", err)
		}
		defer cancel()
		defer resp.Body.Close()
		info, err := saveVerified(file, resp.Body)
		if err != nil {
			return fail(e, "saving snapshot", err)
		}
		fmt.Fprintf(e.stdout, "Saved and verified snapshot to index %d\n", info.Index)
		return exitOK
	},
}

// saveVerified writes the archive from r next to file, verifies it as a
// restore would, and only then puts it in file's place: a failed save
// leaves no file, and never half of one.
func saveVerified(file string, r io.Reader) (snapshot.Info, error) {
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".tmp-*")
	if err != nil {
		return snapshot.Info{}, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, r); err != nil {
		return snapshot.Info{}, fmt.Errorf("receiving the snapshot: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return snapshot.Info{}, err
	}
	info, err := snapshot.Inspect(tmp)
	if err != nil {
		return snapshot.Info{}, fmt.Errorf("verifying the snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return snapshot.Info{}, err
	}
	if err := tmp.Close(); err != nil {
		return snapshot.Info{}, err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return snapshot.Info{}, err
	}
	ok = true
	return info, nil
}

var snapshotRestoreCommand = &command{
	name:     "restore",
	synopsis: "Restore the state from a snapshot FILE (replaces all of it)",
	help:     "beacon snapshot restore [options] FILE",
	http:     true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		file, code := fileArg(e, args)
		if code != exitOK {
			return code
		}
		c, err := newClient(e, fs, true)
		if err != nil {
			return usageErr(e, "%v", err)
		}
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
		resp, cancel, err := c.do(request{method: http.MethodPut, path: "/v1/snapshot", body: f, length: st.Size(),
			contentType: "application/octet-stream"})
		if err != nil {
			return fail(e, "restoring snapshot", err)
		}
		resp.Body.Close()
		cancel()
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
		info, err := snapshot.Inspect(f)
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
