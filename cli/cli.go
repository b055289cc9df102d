package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// Exit codes, as Consul's commands use them.
const (
	exitOK    = 0
	exitError = 1
)

// env is what a command runs with.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	timeouts       timeouts
	// shutdown, when set, is done to stop a long-running command (lock,
	// watch) as SIGINT or SIGTERM do; when nil those commands listen for
	// the signals themselves.
	shutdown context.Context
	// pace is the timing of lock and watch; zero fields are the defaults.
	pace pacing
	// client is the agent's client of a leaf with http set.
	client *client
}

// stdinReader is the command's standard input (none when unset).
func (e *env) stdinReader() io.Reader {
	if e.stdin == nil {
		return strings.NewReader("")
	}
	return e.stdin
}

// command is a node of the command tree: a group of subcommands or a leaf
// that runs.
type command struct {
	name     string
	synopsis string
	// help is the leaf's usage text, with its flags after it.
	help string
	subs []*command
	// flags declares the leaf's flags on fs; run runs it with the
	// remaining arguments.
	flags func(fs *flag.FlagSet)
	run   func(e *env, fs *flag.FlagSet, args []string) int
	// http adds -http-addr and the connection flags to the leaf, which
	// runs with e.client; stream lifts the bound on its exchanges but for
	// idleness (snapshot transfers).
	http, stream bool
}

// commands are the top-level commands, in the order the usage lists them.
var commands = []*command{
	forceLeaveCommand, joinCommand, keygenCommand, keyringCommand, kvCommand, leaveCommand, lockCommand, maintCommand,
	membersCommand, operatorCommand, snapshotCommand, watchCommand,
}

// Has reports whether name is a command Run handles.
func Has(name string) bool {
	for _, c := range commands {
		if c.name == name {
			return true
		}
	}
	return false
}

// Summary is a line per command Run handles, for the program's usage text.
func Summary() string {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "    %-16s   %s\n", c.name, c.synopsis)
	}
	return b.String()
}

// Run runs the command in args (os.Args without the program name, so
// args[0] is the command) and returns the process's exit code: 0 on
// success, 1 on any error.
func Run(args []string, stdout, stderr io.Writer) int {
	return run(&env{stdin: os.Stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, timeouts: defaultTimeouts}, args)
}

func run(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(e.stderr, "Usage: beacon <command>\n\nCommands:\n%s", Summary())
		return exitError
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.dispatch(e, "beacon "+c.name, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "beacon: unknown command %q\n\nCommands:\n%s", args[0], Summary())
	return exitError
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

func (c *command) dispatch(e *env, path string, args []string) int {
	if c.run != nil {
		return c.runLeaf(e, path, args)
	}
	if len(args) == 0 || isHelp(args[0]) {
		out, code := e.stderr, exitError
		if len(args) > 0 {
			out, code = e.stdout, exitOK
		}
		c.groupUsage(out, path)
		return code
	}
	for _, sub := range c.subs {
		if sub.name == args[0] {
			return sub.dispatch(e, path+" "+sub.name, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "%s: unknown subcommand %q\n\n", path, args[0])
	c.groupUsage(e.stderr, path)
	return exitError
}

func (c *command) groupUsage(w io.Writer, path string) {
	fmt.Fprintf(w, "Usage: %s <subcommand> [options]\n\n%s\n\nSubcommands:\n", path, c.synopsis)
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	subs := append([]*command(nil), c.subs...)
	sort.Slice(subs, func(i, j int) bool { return subs[i].name < subs[j].name })
	for _, s := range subs {
		fmt.Fprintf(tw, "    %s\t%s\n", s.name, s.synopsis)
	}
	tw.Flush()
}

func (c *command) runLeaf(e *env, path string, args []string) int {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c.http {
		addConnectionFlags(e, fs)
	}
	if c.flags != nil {
		c.flags(fs)
	}
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: %s\n\n%s\n", c.help, c.synopsis)
		var opts strings.Builder
		fs.SetOutput(&opts)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		if opts.Len() > 0 {
			fmt.Fprintf(w, "\nOptions:\n%s", opts.String())
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(e.stdout)
			return exitOK
		}
		fmt.Fprintf(e.stderr, "Error parsing arguments: %v\n\n", err)
		usage(e.stderr)
		return exitError
	}
	if c.http {
		client, err := newClient(e, fs, clientOptions{stream: c.stream})
		if err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n\n", err)
			usage(e.stderr)
			return exitError
		}
		defer client.close()
		e.client = client
	}
	code := c.run(e, fs, fs.Args())
	if code == exitUsage {
		fmt.Fprintln(e.stderr)
		usage(e.stderr)
		return exitError
	}
	return code
}

// exitUsage is returned by a leaf whose arguments were wrong, after it
// printed why: the usage follows, and the process exits with 1.
const exitUsage = -1

// usageErr reports wrong arguments.
func usageErr(e *env, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "Error: "+format+"\n", args...)
	return exitUsage
}

// fail reports an error of what the command did.
func fail(e *env, what string, err error) int {
	fmt.Fprintf(e.stderr, "Error %s: %v\n", what, err)
	return exitError
}

// flagString reads a leaf's flag by name as text; flagOf as its type.
func flagString(fs *flag.FlagSet, name string) string { return fs.Lookup(name).Value.String() }

func flagOf[T any](fs *flag.FlagSet, name string) T {
	return fs.Lookup(name).Value.(flag.Getter).Get().(T)
}

// serverFlags adds Consul's -datacenter, and -stale to the commands that
// read.
func serverFlags(fs *flag.FlagSet, stale bool) {
	fs.String("datacenter", "", "Name of the datacenter to query. If unspecified, the agent's own datacenter.")
	if stale {
		fs.Bool("stale", false, "Let any server answer, not only the leader: faster and scales reads, "+
			"but the data may be arbitrarily stale.")
	}
}

// consulUI writes as Consul's commands write: a message and a newline,
// information to stdout, errors to stderr.
type consulUI struct{ stdout, stderr io.Writer }

func (u consulUI) info(format string, args ...any) {
	fmt.Fprintf(u.stdout, format+"\n", args...)
}

func (u consulUI) error(format string, args ...any) int {
	fmt.Fprintf(u.stderr, format+"\n", args...)
	return exitError
}

func uiOf(e *env) consulUI { return consulUI{e.stdout, e.stderr} }

// noArgs is the check of a leaf that takes only options.
func noArgs(e *env, args []string) int {
	if len(args) > 0 {
		return usageErr(e, "unexpected argument %q", args[0])
	}
	return exitOK
}

// consulError is an error in Consul's words, shown to users as Consul shows
// it (capitalized, as its commands and client word them).
type consulError string

func (e consulError) Error() string { return string(e) }

func consulErrorf(format string, args ...any) error { return consulError(fmt.Sprintf(format, args...)) }
