// Package virtsh implements virtsh, virtd's command-line client in the
// spirit of libvirt's virsh: the same command names, options and output
// shapes, over package client.
//
// The commands live in one table (commands.go); Run parses the global
// options, picks the command, parses its options against the table and
// runs it. Everything writes to the io.Writers it is given, so tests drive
// Run directly.
package virtsh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/virtd/virtd/client"
)

// DefaultURI is the URI used without -c when VIRTSH_DEFAULT_CONNECT_URI is
// not set, as in virsh.
const DefaultURI = "qemu:///system"

// URIEnv names the environment variable that overrides DefaultURI.
const URIEnv = "VIRTSH_DEFAULT_CONNECT_URI"

// shell is one invocation of virtsh.
type shell struct {
	ctx      context.Context
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	uri      string
	readOnly bool
	quiet    bool

	conn *client.Conn
}

// cmdError is virsh's two-line error: what failed, then why.
//
//	error: failed to get domain 'nosuch'
//	error: no domain with matching name 'nosuch': not found
type cmdError struct {
	what string
	err  error
}

func (e *cmdError) Error() string { return e.what + ": " + e.err.Error() }
func (e *cmdError) Unwrap() error { return e.err }

func failed(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var ce *cmdError
	if errors.As(err, &ce) {
		return err // already says what failed
	}
	return &cmdError{what: fmt.Sprintf(format, args...), err: err}
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// Run runs virtsh with args (without the program name) and returns the
// exit status: 0 on success, 1 on any error, which is printed to stderr
// as "error: ..." lines.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return RunIO(ctx, args, os.Stdin, stdout, stderr)
}

// RunIO is Run with the standard input given, which console reads.
func RunIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	sh := &shell{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, uri: os.Getenv(URIEnv)}
	if sh.uri == "" {
		sh.uri = DefaultURI
	}
	rest, done, err := sh.parseGlobal(args)
	if err != nil {
		sh.printError(err)
		return 1
	}
	if done {
		return 0
	}
	if len(rest) == 0 {
		sh.printError(usagef("no command given (try 'virtsh help')"))
		return 1
	}
	err = sh.runCommand(rest[0], rest[1:])
	if sh.conn != nil {
		sh.conn.Close(context.WithoutCancel(ctx))
	}
	if err != nil {
		sh.printError(err)
		return 1
	}
	// Like virsh, a successful command ends with an empty line unless
	// --quiet.
	sh.extra("\n")
	return 0
}

func (sh *shell) parseGlobal(args []string) (rest []string, done bool, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		value := func(name string) (string, error) {
			if v, ok := strings.CutPrefix(a, name+"="); ok && strings.HasPrefix(name, "--") {
				return v, nil
			}
			if len(name) == 2 && len(a) > 2 && strings.HasPrefix(a, name) {
				return a[2:], nil
			}
			if i+1 >= len(args) {
				return "", usagef("option '%s' requires an argument", name)
			}
			i++
			return args[i], nil
		}
		switch {
		case a == "--":
			return args[i+1:], false, nil
		case a == "-c" || a == "--connect" || strings.HasPrefix(a, "--connect=") || (strings.HasPrefix(a, "-c") && !strings.HasPrefix(a, "--")):
			name := "-c"
			if strings.HasPrefix(a, "--") {
				name = "--connect"
			}
			v, err := value(name)
			if err != nil {
				return nil, false, err
			}
			sh.uri = v
		case a == "-r" || a == "--readonly":
			sh.readOnly = true
		case a == "-q" || a == "--quiet":
			sh.quiet = true
		case a == "-h" || a == "--help":
			sh.printHelp()
			return nil, true, nil
		case a == "-v" || a == "-V" || a == "--version":
			fmt.Fprintln(sh.stdout, client.LibraryVersion)
			return nil, true, nil
		case strings.HasPrefix(a, "-") && a != "-":
			return nil, false, usagef("unsupported option '%s'. See --help.", a)
		default:
			return args[i:], false, nil
		}
	}
	return nil, false, nil
}

func (sh *shell) printError(err error) {
	var ce *cmdError
	if errors.As(err, &ce) {
		fmt.Fprintf(sh.stderr, "error: %s\nerror: %s\n", ce.what, ce.err)
		return
	}
	fmt.Fprintf(sh.stderr, "error: %s\n", err)
}

// printf writes command output.
func (sh *shell) printf(format string, args ...any) { fmt.Fprintf(sh.stdout, format, args...) }

// extra writes what --quiet suppresses: confirmations and decoration.
func (sh *shell) extra(format string, args ...any) {
	if !sh.quiet {
		fmt.Fprintf(sh.stdout, format, args...)
	}
}

// connect opens the connection on first use.
func (sh *shell) connect() (*client.Conn, error) {
	if sh.conn != nil {
		return sh.conn, nil
	}
	open := client.Open
	if sh.readOnly {
		open = client.OpenReadOnly
	}
	c, err := open(sh.ctx, sh.uri)
	if err != nil {
		return nil, failed(err, "failed to connect to the hypervisor")
	}
	sh.conn = c
	return c, nil
}
