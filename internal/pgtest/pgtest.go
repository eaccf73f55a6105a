// Package pgtest gives the tests of paas a PostgreSQL server to run against: a real one,
// whose URL is in the environment variable PAAS_POSTGRES_URL (.ci/run starts one and sets
// it), and a schema of its own for each test.
//
// Without the variable the tests that need a server skip, saying how to run them; with the
// variable CI set they fail instead, so that a CI run never passes by skipping them.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable that holds the URL of the server.
const EnvURL = "PAAS_POSTGRES_URL"

// URL returns the server's URL, or skips t (fails it under CI) if there is none.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(EnvURL)
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set, and CI is: the tests on PostgreSQL must run in CI", EnvURL)
		}
		t.Skipf("%s is not set: these tests need a PostgreSQL server, e.g. %s=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable (.ci/run starts one)", EnvURL, EnvURL)
	}
	return url
}

// Schema returns the name of a new schema for t, which does not exist yet; it is dropped,
// with all it holds, when t ends.
func Schema(t testing.TB, url string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return name
}
