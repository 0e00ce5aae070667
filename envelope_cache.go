package kms

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/pocketkms/kms/internal/esdk"
	"github.com/pocketkms/kms/internal/format"
)

// CacheConfig turns on data-key caching for an Envelope, with the limits
// of the AWS Encryption SDK's caching materials manager.
//
// Sealing: messages with the same encryption context share a data key
// (and its encrypted copies, and for the signed suite its signing key)
// until it is MaxAge old or has sealed MaxMessages messages or MaxBytes
// bytes; recipients are then asked for a new one. Each message still has
// its own message ID, hence its own content key. Streams (NewWriter) do
// not know their length in advance and always get a fresh data key.
//
// Opening: a data key unwrapped for a message is kept for MaxAge, keyed by
// the encrypted data keys and the full encryption context, and reused for
// messages with exactly the same ones.
//
// Warning: caching trades isolation for speed. One exposed data key
// exposes every message that shared it. A cache hit does not call the
// KeyRing: it is neither authorized by the Policy nor audited, and it
// still works for up to MaxAge after the key is disabled, a grant is
// revoked or a policy changes. Keep MaxAge short and the limits tight, and
// leave caching off where each use of a key must be checked.
type CacheConfig struct {
	// MaxAge is how long a data key is used after it is made or unwrapped.
	// Required: caching without it is refused.
	MaxAge time.Duration
	// MaxMessages is the most messages sealed under one data key; 0 means
	// 2^32, the SDK's default and limit.
	MaxMessages uint64
	// MaxBytes is the most plaintext bytes sealed under one data key;
	// 0 means 2^62.
	MaxBytes uint64
	// Capacity is the most entries kept on each side; 0 means 1,000.
	Capacity int
}

// dataKeyCache holds the data keys of one Envelope. It is safe for
// concurrent use.
type dataKeyCache struct {
	cfg   CacheConfig
	clock Clock

	mu   sync.Mutex
	seal map[string]*sealEntry
	open map[[sha512.Size]byte]*openEntry
}

type sealEntry struct {
	in       esdk.SealInput // without plaintext; DataKey is the cache's own copy
	created  time.Time
	messages uint64
	bytes    uint64
}

type openEntry struct {
	dataKey []byte
	created time.Time
}

func newDataKeyCache(cfg CacheConfig, clock Clock) (*dataKeyCache, error) {
	if cfg.MaxAge <= 0 {
		return nil, fmt.Errorf("%w: a data-key cache needs a MaxAge", ErrInvalidArgument)
	}
	if cfg.MaxMessages == 0 || cfg.MaxMessages > 1<<32 {
		cfg.MaxMessages = 1 << 32
	}
	if cfg.MaxBytes == 0 || cfg.MaxBytes > 1<<62 {
		cfg.MaxBytes = 1 << 62
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 1000
	}
	return &dataKeyCache{cfg: cfg, clock: clock, seal: map[string]*sealEntry{}, open: map[[sha512.Size]byte]*openEntry{}}, nil
}

// sealKey identifies the messages that may share a data key.
func sealKey(ec EncryptionContext) (string, error) {
	b, err := format.AppendContext(nil, ec)
	return string(b), err
}

// takeSeal returns a copy of cached sealing materials for a message of n
// bytes, counting it, or false.
func (c *dataKeyCache) takeSeal(key string, n int) (esdk.SealInput, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.seal[key]
	if !ok {
		return esdk.SealInput{}, false
	}
	if c.clock.Now().Sub(e.created) >= c.cfg.MaxAge || e.messages+1 > c.cfg.MaxMessages || e.bytes+uint64(n) > c.cfg.MaxBytes {
		c.dropSeal(key, e)
		return esdk.SealInput{}, false
	}
	e.messages++
	e.bytes += uint64(n)
	in := e.in
	in.DataKey = bytes.Clone(e.in.DataKey)
	return in, true
}

// putSeal caches fresh sealing materials that have sealed one message of n
// bytes, if a message of that size may share them.
func (c *dataKeyCache) putSeal(key string, in esdk.SealInput, n int) {
	if uint64(n) > c.cfg.MaxBytes || c.cfg.MaxMessages < 1 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.seal[key]; ok {
		c.dropSeal(key, old)
	}
	if len(c.seal) >= c.cfg.Capacity {
		c.evictSeal()
	}
	in.Plaintext = nil
	in.DataKey = bytes.Clone(in.DataKey)
	in.Context = maps.Clone(in.Context) // the caller may change its map after Seal
	c.seal[key] = &sealEntry{in: in, created: c.clock.Now(), messages: 1, bytes: uint64(n)}
}

func (c *dataKeyCache) dropSeal(key string, e *sealEntry) {
	clear(e.in.DataKey)
	delete(c.seal, key)
}

// evictSeal drops the oldest sealing entry.
func (c *dataKeyCache) evictSeal() {
	var oldKey string
	var oldest *sealEntry
	for k, e := range c.seal {
		if oldest == nil || e.created.Before(oldest.created) {
			oldKey, oldest = k, e
		}
	}
	if oldest != nil {
		c.dropSeal(oldKey, oldest)
	}
}

// openKey identifies a data key by what unwraps it: every encrypted data
// key and the full encryption context, given in its canonical encoding
// (nil if it has none). (The suite needs no place here: the
// same encrypted data keys hold the same data key, and Open checks its
// length against the suite.)
func openKey(edks []format.EDK, enc []byte) ([sha512.Size]byte, error) {
	if enc == nil {
		return [sha512.Size]byte{}, format.ErrContext
	}
	d := sha512.New()
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(len(edks)))
	for _, e := range edks {
		for _, f := range [][]byte{[]byte(e.ProviderID), e.ProviderInfo, e.Ciphertext} {
			b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
			b = append(b, f...)
		}
	}
	d.Write(b)
	d.Write(enc)
	var k [sha512.Size]byte
	d.Sum(k[:0])
	return k, nil
}

func (c *dataKeyCache) getOpen(k [sha512.Size]byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.open[k]
	if !ok {
		return nil, false
	}
	if c.clock.Now().Sub(e.created) >= c.cfg.MaxAge {
		clear(e.dataKey)
		delete(c.open, k)
		return nil, false
	}
	return bytes.Clone(e.dataKey), true
}

func (c *dataKeyCache) putOpen(k [sha512.Size]byte, dataKey []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.open) >= c.cfg.Capacity {
		var oldKey [sha512.Size]byte
		var oldest *openEntry
		for key, e := range c.open {
			if oldest == nil || e.created.Before(oldest.created) {
				oldKey, oldest = key, e
			}
		}
		if oldest != nil {
			clear(oldest.dataKey)
			delete(c.open, oldKey)
		}
	}
	c.open[k] = &openEntry{dataKey: bytes.Clone(dataKey), created: c.clock.Now()}
}

// cachedUnwrapper consults the cache before the recipients.
func (e *Envelope) cachedUnwrapper(ctx context.Context) esdk.Unwrapper {
	inner := e.unwrapper(ctx)
	return func(edks []format.EDK, ec esdk.Context) ([]byte, error) {
		k, err := openKey(edks, ec.Encoding())
		if err != nil {
			return inner(edks, ec)
		}
		if dk, ok := e.cache.getOpen(k); ok {
			return dk, nil
		}
		dk, err := inner(edks, ec)
		if err == nil {
			e.cache.putOpen(k, dk)
		}
		return dk, err
	}
}
