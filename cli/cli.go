package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// Exit codes, as Consul's commands use them. A leaf whose arguments were
// wrong returns exitUsage after saying why: the usage follows, and exit 1.
const exitOK, exitError, exitUsage = 0, 1, -1

// env is what a command runs with. shutdown, when set, is done to stop a
// long-running command (lock, watch) as SIGINT or SIGTERM do; when nil,
// those listen for the signals. client is the agent's, for a leaf with
// http set.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	timeouts       timeouts
	shutdown       context.Context
	pace           pacing
	client         *client
	binary         Binary
}

// command is a node of the command tree: a group of subs (by name, as its
// usage lists them), or a leaf with its usage line (help), flags and run.
// http gives a leaf the connection flags and e.client; stream lifts the
// bound on its exchanges but for idleness (snapshot transfers); noArgs
// refuses arguments after the options; follow lifts every bound on its
// exchange, idleness too (a monitor's stream, quiet while the agent is).
type command struct {
	name, synopsis, help         string
	subs                         []*command
	flags                        func(fs *flag.FlagSet)
	run                          func(e *env, fs *flag.FlagSet, args []string) int
	http, stream, follow, noArgs bool
}

// commands are the top-level commands, in the order the usage lists them.
var commands = []*command{
	aclCommand, catalogCommand, eventCommand, forceLeaveCommand, infoCommand, joinCommand, keygenCommand, keyringCommand,
	kvCommand, leaveCommand, lockCommand, maintCommand, membersCommand, monitorCommand, operatorCommand, reloadCommand,
	rttCommand, servicesCommand, snapshotCommand, tlsCommand, validateCommand, versionCommand, watchCommand,
}

// Has reports whether name is a command Run handles.
func Has(name string) bool {
	return slices.ContainsFunc(commands, func(c *command) bool { return c.name == name })
}

// Summary is a line per command Run handles, for the program's usage text.
func Summary() string {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "    %-16s   %s\n", c.name, c.synopsis)
	}
	return b.String()
}

// Run runs the command in args (os.Args without the program name) and
// returns the exit code; bin is what version and validate need of the
// binary. The children of lock and watch write to stdout and stderr too:
// writers other than files must be safe for concurrent use.
func Run(args []string, stdout, stderr io.Writer, bin Binary) int {
	return run(&env{stdin: os.Stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, timeouts: defaultTimeouts,
		pace: defaultPacing, binary: bin}, args)
}

func run(e *env, args []string) int {
	if len(args) == 0 {
		return e.fail("Usage: beacon <command>\n\nCommands:\n%s", strings.TrimSuffix(Summary(), "\n"))
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.dispatch(e, "beacon "+c.name, args[1:])
		}
	}
	return e.fail("beacon: unknown command %q\n\nCommands:\n%s", args[0], strings.TrimSuffix(Summary(), "\n"))
}

func (c *command) dispatch(e *env, path string, args []string) int {
	if c.run != nil {
		return c.runLeaf(e, path, args)
	}
	if len(args) == 0 || slices.Contains([]string{"-h", "-help", "--help", "help"}, args[0]) {
		if len(args) == 0 {
			c.groupUsage(e.stderr, path)
			return exitError
		}
		c.groupUsage(e.stdout, path)
		return exitOK
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
	for _, s := range c.subs {
		fmt.Fprintf(tw, "    %s\t%s\n", s.name, s.synopsis)
	}
	tw.Flush()
}

func (c *command) runLeaf(e *env, path string, args []string) int {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
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
		if opts.Len() > 0 {
			fmt.Fprintf(w, "\nOptions:\n%s", opts.String())
		}
	}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		usage(e.stdout)
		return exitOK
	}
	code := exitUsage
	switch {
	case err != nil:
		fmt.Fprintf(e.stderr, "Error parsing arguments: %v\n", err)
	case c.noArgs && fs.NArg() > 0:
		usageErr(e, "unexpected argument %q", fs.Arg(0))
	case c.http:
		if e.client, err = newClient(e, fs, clientOptions{stream: c.stream, follow: c.follow}); err != nil {
			usageErr(e, "%v", err)
			break
		}
		defer e.client.close()
		fallthrough
	default:
		code = c.run(e, fs, fs.Args())
	}
	if code == exitUsage {
		fmt.Fprintln(e.stderr)
		usage(e.stderr)
		return exitError
	}
	return code
}

// usageErr reports wrong arguments.
func usageErr(e *env, format string, args ...any) int {
	e.fail("Error: "+format, args...)
	return exitUsage
}

// info and fail write as Consul's commands write: a message and a
// newline, information to stdout, errors to stderr (and exit 1).
func (e *env) info(format string, args ...any) { fmt.Fprintf(e.stdout, format+"\n", args...) }

func (e *env) fail(format string, args ...any) int {
	fmt.Fprintf(e.stderr, format+"\n", args...)
	return exitError
}

// writeOutput writes a command's whole output: a failed write is an error.
func writeOutput(e *env, s string) int {
	if _, err := io.WriteString(e.stdout, s); err != nil {
		return e.fail("Error writing output: %v", err)
	}
	return exitOK
}

// flagString reads a leaf's flag by name as text; flagOf as its type.
func flagString(fs *flag.FlagSet, name string) string { return fs.Lookup(name).Value.String() }

func flagOf[T any](fs *flag.FlagSet, name string) T {
	return fs.Lookup(name).Value.(flag.Getter).Get().(T)
}

// serverFlags adds Consul's -datacenter, and -stale for reads.
func serverFlags(fs *flag.FlagSet, stale bool) {
	fs.String("datacenter", "", "Name of the datacenter to query. If unspecified, the agent's own datacenter.")
	if stale {
		fs.Bool("stale", false, "Let any server answer, not only the leader: faster, but maybe stale.")
	}
}

// consulError is an error in Consul's words (capitalized, as its commands
// and client word them).
type consulError string

func (e consulError) Error() string { return string(e) }

func consulErrorf(format string, args ...any) error { return consulError(fmt.Sprintf(format, args...)) }
