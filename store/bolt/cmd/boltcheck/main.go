// Command boltcheck checks a store file of package bolt offline, with bolt.Check, and prints
// what it found:
//
//	boltcheck FILE
//
// It exits 0 if the file is sound, 1 if it is damaged, 2 on a usage error, and 3 if it could
// not check the file: it does not exist, cannot be read, or is in use by a running node
// (stop the node first, or check a copy of the file). It never writes the file.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/zkpaas/paas/store/bolt"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// Exit codes.
const (
	sound     = 0
	damaged   = 1
	usage     = 2
	uncheck   = 3
	usageText = "usage: boltcheck FILE\n\nChecks the bolt store file FILE offline; exits 0 if sound, 1 if damaged, 2 on a usage error, 3 if it cannot check the file.\n"
)

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("boltcheck", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, usageText) }
	if err := flags.Parse(args); err != nil {
		return usage
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return usage
	}
	path := flags.Arg(0)
	err := bolt.Check(path)
	d, isDamaged := errors.AsType[*bolt.DamagedFileError](err)
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "%s: sound\n", path)
		return sound
	case isDamaged:
		fmt.Fprintf(stdout, "%s: DAMAGED, %d problems:\n", path, len(d.Problems)+d.Unlisted)
		for _, p := range d.Problems {
			fmt.Fprintf(stdout, "  - %v\n", p)
		}
		if d.Unlisted > 0 {
			fmt.Fprintf(stdout, "  - and %d more\n", d.Unlisted)
		}
		fmt.Fprintln(stdout, "Restore the file from a backup; see the documentation of package bolt.")
		return damaged
	default:
		fmt.Fprintf(stderr, "boltcheck: %v\n", err)
		return uncheck
	}
}
