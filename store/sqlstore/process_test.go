package sqlstore_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
	"github.com/pocketkms/kms/store/sqlstore"
)

// The tests below run this test binary again as a child process that works
// on the same database: POCKETKMS_CHILD names what the child does.
func TestMain(m *testing.M) {
	switch os.Getenv("POCKETKMS_CHILD") {
	case "":
		os.Exit(m.Run())
	case "churn":
		childChurn()
	case "rotator":
		childRotator()
	default:
		fmt.Fprintln(os.Stderr, "unknown child", os.Getenv("POCKETKMS_CHILD"))
		os.Exit(2)
	}
	os.Exit(0)
}

// childRoot is the root key every child and its parent share.
func childRoot() kms.RootKey {
	rk, err := kms.NewAESRootKey(bytes.Repeat([]byte{0x42}, 32), nil)
	if err != nil {
		panic(err)
	}
	return rk
}

func childStore() *sqlstore.Store {
	s, err := sqlstore.Open(context.Background(), os.Getenv("POCKETKMS_CHILD_DSN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(3)
	}
	return s
}

// childChurn creates, rotates and imports keys until it is killed, and
// prints a line after each change is acknowledged:
//
//	create <id>, rotate <id> <version>, import <id>
func childChurn() {
	ctx := context.Background()
	s := childStore()
	ring, err := kms.NewKeyRing(kms.Config{Store: s, RootKey: childRoot()})
	if err != nil {
		panic(err)
	}
	material := bytes.Repeat([]byte{0x17}, 32)
	for i := 0; ; i++ {
		m, err := ring.CreateKey(ctx, kms.CreateKeyInput{})
		if err != nil {
			panic(err)
		}
		fmt.Println("create", m.KeyID)
		v, err := ring.RotateKeyOnDemand(ctx, m.KeyID)
		if err != nil {
			panic(err)
		}
		fmt.Println("rotate", m.KeyID, v)
		if i%4 == 0 {
			ext, err := ring.CreateKey(ctx, kms.CreateKeyInput{Origin: kms.OriginExternal})
			if err != nil {
				panic(err)
			}
			if err := kmstest.ImportMaterial(ctx, ring, ext.KeyID, material); err != nil {
				panic(err)
			}
			fmt.Println("import", ext.KeyID)
		}
	}
}

// childRotator reads commands from stdin: "rotate <id>" rotates the key
// and prints "rotated <version>"; "race <id> <n>" rotates it n times as
// fast as it can and prints "raced <versions...>".
func childRotator() {
	ctx := context.Background()
	s := childStore()
	ring, err := kms.NewKeyRing(kms.Config{Store: s, RootKey: childRoot()})
	if err != nil {
		panic(err)
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch f[0] {
		case "rotate":
			v, err := ring.RotateKeyOnDemand(ctx, f[1])
			if err != nil {
				fmt.Println("error", err)
				continue
			}
			fmt.Println("rotated", v)
		case "race":
			n, _ := strconv.Atoi(f[2])
			var vs []string
			for range n {
				v, err := ring.RotateKeyOnDemand(ctx, f[1])
				if err != nil {
					fmt.Println("error", err)
					return
				}
				vs = append(vs, strconv.Itoa(int(v)))
			}
			fmt.Println("raced", strings.Join(vs, " "))
		}
	}
}

// child starts this binary as a child of the given kind on dsn.
func child(t *testing.T, kind, dsn string) (*exec.Cmd, io.WriteCloser, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "POCKETKMS_CHILD="+kind, "POCKETKMS_CHILD_DSN="+dsn)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, in, bufio.NewScanner(out)
}

// dsnFor returns a new database of the dialect: a SQLite file path or a
// PostgreSQL schema's connection string.
func dsnFor(t *testing.T, dialect string) string {
	if dialect == "sqlite" {
		return filepath.Join(t.TempDir(), "keys.db")
	}
	return schemaDSN(t)
}

// TestCrashSafety kills a child with SIGKILL at random points while it
// creates, rotates and imports keys, 50 times per dialect, then checks that
// every change it acknowledged is there and that the store still opens and
// every key in it loads.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dsn := dsnFor(t, dialect)
			acked := map[string]uint32{} // key ID → versions acknowledged
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
			for round := range 50 {
				cmd, _, out := child(t, "churn", dsn)
				var mu sync.Mutex
				done := make(chan struct{})
				go func() {
					defer close(done)
					for out.Scan() {
						f := strings.Fields(out.Text())
						mu.Lock()
						switch f[0] {
						case "create", "import":
							acked[f[1]] = max(acked[f[1]], 1)
						case "rotate":
							v, _ := strconv.Atoi(f[2])
							acked[f[1]] = max(acked[f[1]], uint32(v))
						}
						mu.Unlock()
					}
				}()
				// Early rounds also kill it while it opens (and migrates).
				time.Sleep(time.Duration(rng.IntN(20+round*6)) * time.Millisecond)
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				<-done
				_ = cmd.Wait()

				s, err := sqlstore.Open(context.Background(), dsn)
				require.NoError(t, err, "round %d: the store must open after a crash", round)
				ring, err := kms.NewKeyRing(kms.Config{Store: s, RootKey: childRoot()})
				require.NoError(t, err)
				mu.Lock()
				for id, v := range acked {
					m, err := ring.DescribeKey(context.Background(), id)
					if !assert.NoError(t, err, "round %d: acknowledged key %s is gone", round, id) {
						continue
					}
					assert.GreaterOrEqual(t, uint32(m.Versions), v, "round %d: key %s lost an acknowledged version", round, id)
				}
				mu.Unlock()
				// Every stored key loads: no half-written record.
				ids, err := s.ListKeys(context.Background(), "", 100000)
				require.NoError(t, err)
				for _, id := range ids {
					_, err := ring.DescribeKey(context.Background(), id)
					assert.NoError(t, err, "round %d: stored key %s does not load", round, id)
				}
				require.NoError(t, s.Close())
			}
			t.Logf("%s: %d acknowledged keys over 50 kills", dialect, len(acked))
			assert.NotEmpty(t, acked, "the child never got anything done")
		})
	}
}

// TestTwoProcesses: on one PostgreSQL database, a key rotated in one
// process is used by the other (which follows the database) within one
// second, and both processes rotating one key at once give a gap-free
// sequence of versions.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	dsn := schemaDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := sqlstore.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer s.Close()
	// A CacheTTL of an hour: only Follow can make the change visible soon.
	ring, err := kms.NewKeyRing(kms.Config{Store: s, RootKey: childRoot(), CacheTTL: time.Hour})
	require.NoError(t, err)
	go s.Follow(ctx, ring)
	k, err := ring.CreateKey(ctx, kms.CreateKeyInput{})
	require.NoError(t, err)
	encVersion := func() uint32 {
		out, err := ring.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
		require.NoError(t, err)
		return out.KeyVersion
	}
	require.Equal(t, uint32(1), encVersion())

	_, in, out := child(t, "rotator", dsn)
	for want := uint32(2); want <= 4; want++ {
		_, err = fmt.Fprintln(in, "rotate", k.KeyID)
		require.NoError(t, err)
		require.True(t, out.Scan())
		require.Equal(t, fmt.Sprint("rotated ", want), out.Text())
		rotated := time.Now()
		for encVersion() != want {
			require.Less(t, time.Since(rotated), time.Second, "the rotation in the other process is not used within one second")
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("version %d used %v after the other process rotated", want, time.Since(rotated))
	}

	// Both rotate the key 25 times at once.
	const n = 25
	_, err = fmt.Fprintln(in, "race", k.KeyID, n)
	require.NoError(t, err)
	var mine []uint32
	for range n {
		v, err := ring.RotateKeyOnDemand(ctx, k.KeyID)
		require.NoError(t, err)
		mine = append(mine, v)
	}
	require.True(t, out.Scan())
	f := strings.Fields(out.Text())
	require.Equal(t, "raced", f[0], out.Text())
	seen := map[uint32]bool{}
	for _, v := range mine {
		seen[v] = true
	}
	for _, v := range f[1:] {
		x, err := strconv.Atoi(v)
		require.NoError(t, err)
		assert.False(t, seen[uint32(x)], "version %d was made twice", x)
		seen[uint32(x)] = true
	}
	require.Len(t, seen, 2*n)
	for v := uint32(5); v < 5+2*n; v++ {
		assert.True(t, seen[v], "version %d is missing", v)
	}
	rec, err := s.GetKey(ctx, k.KeyID)
	require.NoError(t, err)
	require.Len(t, rec.Versions, 4+2*n, "the stored versions")
	for i, v := range rec.Versions {
		assert.Equal(t, uint32(i+1), v.Version)
	}
}

// TestRunDueOnceAcrossInstances: rings on separate connections to one
// database all run RunDue at once; each due rotation and deletion happens
// exactly once.
func TestRunDueOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := dsnFor(t, dialect)
			clock := kmstest.NewClock(kmstest.Epoch)
			var rings []*kms.KeyRing
			for range 3 {
				s, err := sqlstore.Open(ctx, dsn)
				require.NoError(t, err)
				t.Cleanup(func() { s.Close() })
				r, err := kms.NewKeyRing(kms.Config{Store: s, RootKey: childRoot(), Clock: clock})
				require.NoError(t, err)
				rings = append(rings, r)
			}
			var rotating, doomed []string
			for i := range 6 {
				k, err := rings[i%3].CreateKey(ctx, kms.CreateKeyInput{})
				require.NoError(t, err)
				if i%2 == 0 {
					require.NoError(t, rings[0].EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: k.KeyID, RotationPeriodInDays: 90}))
					rotating = append(rotating, k.KeyID)
				} else {
					_, err := rings[1].ScheduleKeyDeletion(ctx, k.KeyID, 7)
					require.NoError(t, err)
					doomed = append(doomed, k.KeyID)
				}
			}
			clock.Advance(91 * 24 * time.Hour)
			var mu sync.Mutex
			rotated, deleted := map[string]int{}, map[string]int{}
			var wg sync.WaitGroup
			for _, r := range rings {
				for range 2 {
					wg.Go(func() {
						out, err := r.RunDue(ctx)
						assert.NoError(t, err)
						mu.Lock()
						defer mu.Unlock()
						for _, rot := range out.Rotated {
							rotated[rot.KeyID]++
						}
						for _, id := range out.Deleted {
							deleted[id]++
						}
					})
				}
			}
			wg.Wait()
			for _, id := range rotating {
				assert.Equal(t, 1, rotated[id], "key %s rotations", id)
				m, err := rings[2].DescribeKey(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, 2, m.Versions)
			}
			for _, id := range doomed {
				assert.Equal(t, 1, deleted[id], "key %s deletions", id)
			}
			assert.Len(t, rotated, len(rotating))
			assert.Len(t, deleted, len(doomed))
		})
	}
}
