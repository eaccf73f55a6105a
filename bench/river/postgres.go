package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// binGlob is where Debian's postgresql packages put the server's programs.
const binGlob = "/usr/lib/postgresql/*/bin"

// MissingPostgresError is returned when no PostgreSQL server programs are installed.
type MissingPostgresError struct {
	Searched string // the pattern searched for pg_ctl and initdb
}

func (e *MissingPostgresError) Error() string {
	return fmt.Sprintf("no PostgreSQL server programs (pg_ctl, initdb) in %s: install the Debian package postgresql, or pass -pg with the URL of a server", e.Searched)
}

// ErrNoPostgresUser is returned when running as root on a machine without the user postgres,
// which initdb needs since it refuses to run as root.
var ErrNoPostgresUser = errors.New("running as root, and there is no user postgres to run the server as: install the Debian package postgresql")

// server is a PostgreSQL server of this run's own, in a temporary directory, listening on
// 127.0.0.1 only, with the stock settings (fsync and synchronous_commit on).
type server struct {
	bin  string // the directory of pg_ctl and initdb
	dir  string // the temporary directory: data, socket and log
	port int
	// runAs is the user the programs run as through runuser; empty: the current user.
	runAs string
}

// startPostgres runs initdb in a new temporary directory and starts the server on a free
// loopback port. On error it leaves nothing behind.
func startPostgres(ctx context.Context) (s *server, err error) {
	bin, err := findPostgres(binGlob)
	if err != nil {
		return nil, err
	}
	s = &server{bin: bin}
	if os.Geteuid() == 0 {
		s.runAs = "postgres"
	}
	s.dir, err = os.MkdirTemp("", "paas-bench-river-pg-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.stop()
			s = nil
		}
	}()
	if s.runAs != "" {
		u, err := user.Lookup(s.runAs)
		if err != nil {
			return nil, ErrNoPostgresUser
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			return nil, err
		}
	}
	// --no-sync only skips initdb's own flush of the new files; the server it starts syncs
	// every commit as usual.
	if err := s.run(ctx, "initdb", "-D", s.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		return nil, err
	}
	s.port, err = freePort()
	if err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", s.port, s.dir)
	if err := s.run(ctx, "pg_ctl", "-D", s.data(), "-l", s.log(), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		if log, _ := os.ReadFile(s.log()); len(log) > 0 {
			err = fmt.Errorf("%w; server log:\n%s", err, tail(log, 2000))
		}
		return nil, err
	}
	return s, nil
}

// url is the server's address for the user postgres.
func (s *server) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// stop stops the server, if it runs, and removes its directory. It is the one cleanup for
// every way out of the program, so it runs with a context of its own: the run's context may
// be the one a Ctrl-C cancelled.
func (s *server) stop() error {
	var err error
	if s.port != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = s.run(ctx, "pg_ctl", "-D", s.data(), "-m", "fast", "-w", "stop")
		s.port = 0
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

func (s *server) data() string { return filepath.Join(s.dir, "data") }
func (s *server) log() string  { return filepath.Join(s.dir, "log") }

// run runs one of the server's programs as s.runAs, and returns its output with its error.
func (s *server) run(ctx context.Context, program string, args ...string) error {
	path := filepath.Join(s.bin, program)
	if s.runAs != "" {
		args = append([]string{"-u", s.runAs, "--", path}, args...)
		path = "runuser"
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", program, err, tail(out.Bytes(), 2000))
	}
	return nil
}

// findPostgres returns the bin directory of the newest PostgreSQL server in pattern.
func findPostgres(pattern string) (string, error) {
	dirs, _ := filepath.Glob(pattern)
	// Debian names the directories by major version; the newest sorts last by number.
	slices.SortFunc(dirs, func(a, b string) int {
		return major(a) - major(b)
	})
	for _, d := range slices.Backward(dirs) {
		if executable(filepath.Join(d, "pg_ctl")) && executable(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", &MissingPostgresError{Searched: pattern}
}

// major is the version in /usr/lib/postgresql/VERSION/bin, 0 if it is not a number.
func major(bin string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return n
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// freePort returns a loopback port that was free a moment ago. Another program may take it
// before the server does; then pg_ctl fails and says so.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail is the last n bytes of b, for error messages.
func tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
