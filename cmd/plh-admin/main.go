// Command plh-admin is the hub shell client (spec api.md §10, hubshell_client):
// it sends Starlark code to a plh-hub admin endpoint and prints the reply.
//
//	plh-admin [--endpoint tcp://127.0.0.1:5600] [--token T | --token-file F] --exec CODE
//	plh-admin [...] --file PATH
//	plh-admin [...]                 interactive REPL (line editing and history on a
//	                                terminal, plain line mode otherwise)
//	plh-admin check SEGMENT         integrity check of a DataBlock (check.go)
//
// Without --token (or $PLH_ADMIN_TOKEN) the token is read from --token-file,
// by default the file plh-hub writes for the endpoint when it generates its
// token (hubd/admin.TokenFile).
//
// Exit status: 0 when the request succeeded (REPL: at :quit or end of input),
// 1 when it failed or the endpoint could not be reached, 2 on usage errors.
// Shortcuts :channels :config :metrics :help are answered by the hub;
// :quit, :exit and :q end the REPL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pylabhub/plh/hubd/admin"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return runCheck(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("plh-admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", envOr("PYLABHUB_ADMIN_ENDPOINT", admin.DefaultEndpoint), "admin endpoint of the hub")
	token := fs.String("token", os.Getenv("PLH_ADMIN_TOKEN"), "admin token (default $PLH_ADMIN_TOKEN; wins over --token-file)")
	tokenFile := fs.String("token-file", "", "file holding the admin token (default: the token file plh-hub writes for --endpoint, in $XDG_RUNTIME_DIR/plh)")
	code := fs.String("exec", "", "execute CODE and exit")
	file := fs.String("file", "", "execute the Starlark file PATH and exit")
	timeout := fs.Duration("timeout", admin.DefaultClientTimeout, "how long to wait for the connection and for each reply")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || (*code != "" && *file != "") {
		fmt.Fprintln(stderr, "plh-admin: give at most one of --exec and --file, and no arguments")
		return 2
	}
	tok, err := resolveToken(*token, *tokenFile, *endpoint)
	if err != nil {
		fmt.Fprintln(stderr, "plh-admin:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	c, err := admin.DialClient(ctx, *endpoint, tok)
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "plh-admin:", err)
		return 1
	}
	defer c.Close()
	sh := &shell{c: c, timeout: *timeout, out: stdout, errOut: stderr}

	switch {
	case *code != "":
		return sh.once(*code)
	case *file != "":
		src, err := os.ReadFile(*file)
		if err != nil {
			fmt.Fprintln(stderr, "plh-admin:", err)
			return 1
		}
		return sh.once(string(src))
	}
	return sh.repl(stdin)
}

// resolveToken returns the token to send: token when given, else the content of
// file, else of the endpoint's token file if it exists (a hub with a configured
// token or admin.allow_no_token writes none).
func resolveToken(token, file, endpoint string) (string, error) {
	if token != "" {
		return token, nil
	}
	if file != "" {
		return admin.ReadTokenFile(file)
	}
	path, err := admin.TokenFile(endpoint)
	if err != nil {
		return "", nil
	}
	tok, err := admin.ReadTokenFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return tok, err
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// shell sends requests and prints replies.
type shell struct {
	c       *admin.Client
	timeout time.Duration
	out     io.Writer
	errOut  io.Writer
	color   bool // errors in red (on a terminal)
}

// once runs one request and returns the exit status.
func (sh *shell) once(code string) int {
	ok, err := sh.send(code)
	if err != nil {
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

// send runs code and prints output (stdout) and error (stderr). It returns the
// reply's success, or an error when no reply came.
func (sh *shell) send(code string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sh.timeout)
	defer cancel()
	r, err := sh.c.Exec(ctx, code)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no reply within %v", sh.timeout)
		}
		sh.printErr("plh-admin: " + err.Error())
		return false, err
	}
	fmt.Fprint(sh.out, r.Output)
	if !r.Success {
		sh.printErr(r.Error)
	}
	return r.Success, nil
}

func (sh *shell) printErr(msg string) {
	if sh.color {
		fmt.Fprintf(sh.errOut, "\x1b[31m%s\x1b[0m\n", msg)
		return
	}
	fmt.Fprintln(sh.errOut, msg)
}
