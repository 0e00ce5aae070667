package sqlstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pocketkms/kms"
)

// changesChannel is the PostgreSQL notification channel of key and alias
// changes; a notification's payload is the key ID or alias name.
const changesChannel = "pocketkms_changes"

// notify tells the processes that Follow this database that a key or
// alias changed. It is best effort: a lost notification delays the change
// elsewhere by at most the rings' CacheTTL.
func (s *Store) notify(ctx context.Context, name string) {
	if s.pg == nil {
		return
	}
	_, _ = s.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, changesChannel, name)
}

// Forgetter is what Follow keeps up to date: a *kms.KeyRing.
type Forgetter interface {
	Forget(name string)
	ForgetAll()
}

var _ Forgetter = (*kms.KeyRing)(nil)

// Follow makes ring see changes that other processes make to the
// database at once, rather than within its CacheTTL: on PostgreSQL it
// listens for the notifications every Store sends after a write and drops
// the ring's cached copy of each key or alias named. If the listening
// connection fails, it drops every cached copy (notifications may have
// been missed) and connects again. It returns when ctx ends. On SQLite,
// whose file one process normally owns, it returns nil at once: rings
// sharing a file see each other's changes within CacheTTL.
//
//	go store.Follow(ctx, ring)
func (s *Store) Follow(ctx context.Context, ring Forgetter) error {
	if s.pg == nil {
		return nil
	}
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		_ = s.listen(ctx, ring) // returns when the connection fails: start over
		if ctx.Err() != nil {
			break
		}
		if time.Since(start) > time.Minute {
			backoff = 50 * time.Millisecond // it had been working: retry soon
		}
		ring.ForgetAll()
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

// listen holds one connection LISTENing until it fails or ctx ends.
func (s *Store) listen(ctx context.Context, ring Forgetter) error {
	conn, err := pgx.ConnectConfig(ctx, s.pg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+changesChannel); err != nil {
		return err
	}
	// Changes made before LISTEN took effect were not heard.
	ring.ForgetAll()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		ring.Forget(n.Payload)
	}
}
