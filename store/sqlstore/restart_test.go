package sqlstore_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
	"github.com/pocketkms/kms/store/sqlstore"
)

const (
	adminARN = "arn:aws:iam::111122223333:role/admin"
	appARN   = "arn:aws:iam::111122223333:role/app"
)

// restartPolicy lets the admin do anything and the app encrypt and decrypt.
const restartPolicy = `{"Version": "2012-10-17", "Statement": [
 {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "` + adminARN + `"}, "Action": "kms:*", "Resource": "*"},
 {"Sid": "App", "Effect": "Allow", "Principal": {"AWS": "` + appARN + `"}, "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*",
  "Condition": {"StringEquals": {"kms:EncryptionContext:app": "orders"}}}]}`

func testRootKey(t *testing.T, b byte) kms.RootKey {
	t.Helper()
	rk, err := kms.NewAESRootKey(bytes.Repeat([]byte{b}, 32), nil)
	require.NoError(t, err)
	return rk
}

// TestRestart: everything a ring sets up survives closing the store and
// opening its file again, and the due work still happens on time.
func TestRestart(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			testRestart(t, dialect)
		})
	}
}

// reopenable returns a function that opens the same database each time.
func reopenable(t *testing.T, dialect string) func() *sqlstore.Store {
	if dialect == "sqlite" {
		path := filepath.Join(t.TempDir(), "keys.db")
		return func() *sqlstore.Store {
			s, err := sqlstore.OpenSQLite(context.Background(), path)
			require.NoError(t, err)
			return s
		}
	}
	dsn := schemaDSN(t)
	return func() *sqlstore.Store {
		s, err := sqlstore.OpenPostgres(context.Background(), dsn)
		require.NoError(t, err)
		return s
	}
}

func testRestart(t *testing.T, dialect string) {
	ctx := context.Background()
	admin := kms.WithPrincipal(ctx, kms.Principal{ARN: adminARN})
	app := kms.WithPrincipal(ctx, kms.Principal{ARN: appARN})
	open := reopenable(t, dialect)
	root := testRootKey(t, 7)

	s1 := open()
	r1 := kmstest.New(t, kms.Config{Store: s1, RootKey: root, Policy: kms.KeyPolicies{}})
	k, err := r1.KeyRing.CreateKey(admin, kms.CreateKeyInput{Description: "orders", Policy: restartPolicy, Tags: []kms.Tag{{TagKey: "team", TagValue: "shop"}}})
	require.NoError(t, err)
	require.NoError(t, r1.CreateAlias(admin, "alias/orders", k.KeyID))
	grant, err := r1.CreateGrant(admin, kms.CreateGrantInput{
		KeyID: k.KeyID, GranteePrincipal: "arn:aws:iam::111122223333:role/report", Operations: []kms.Op{kms.OpDecrypt},
		Constraints: &kms.GrantConstraints{EncryptionContextSubset: kms.EncryptionContext{"app": "orders"}}, Name: "report",
	})
	require.NoError(t, err)
	require.NoError(t, r1.EnableKeyRotation(admin, kms.EnableKeyRotationInput{KeyID: k.KeyID, RotationPeriodInDays: 90}))
	doomed, err := r1.KeyRing.CreateKey(admin, kms.CreateKeyInput{Policy: restartPolicy})
	require.NoError(t, err)
	_, err = r1.ScheduleKeyDeletion(admin, doomed.KeyID, 30)
	require.NoError(t, err)
	ec := kms.EncryptionContext{"app": "orders"}
	enc, err := r1.Encrypt(app, kms.EncryptInput{KeyID: "alias/orders", Plaintext: []byte("order 17"), EncryptionContext: ec})
	require.NoError(t, err)
	require.NoError(t, s1.Close())

	s2 := open()
	defer s2.Close()
	r2 := kmstest.New(t, kms.Config{Store: s2, RootKey: root, Policy: kms.KeyPolicies{}})
	m, err := r2.DescribeKey(admin, "alias/orders")
	require.NoError(t, err)
	assert.Equal(t, k.KeyID, m.KeyID)
	assert.Equal(t, "orders", m.Description)
	pol, err := r2.GetKeyPolicy(admin, k.KeyID, "")
	require.NoError(t, err)
	assert.Equal(t, restartPolicy, pol)
	tags, err := r2.ListResourceTags(admin, kms.ListResourceTagsInput{KeyID: k.KeyID})
	require.NoError(t, err)
	assert.Equal(t, []kms.Tag{{TagKey: "team", TagValue: "shop"}}, tags.Tags)
	grants, err := r2.ListGrants(admin, kms.ListGrantsInput{KeyID: k.KeyID})
	require.NoError(t, err)
	require.Len(t, grants.Grants, 1)
	assert.Equal(t, grant.GrantID, grants.Grants[0].GrantID)
	assert.Equal(t, kms.EncryptionContext{"app": "orders"}, grants.Grants[0].Constraints.EncryptionContextSubset)
	rot, err := r2.GetKeyRotationStatus(admin, k.KeyID)
	require.NoError(t, err)
	assert.True(t, rot.KeyRotationEnabled)
	assert.Equal(t, 90, rot.RotationPeriodInDays)
	assert.Equal(t, kmstest.Epoch.Add(90*24*time.Hour), rot.NextRotationDate)
	d, err := r2.DescribeKey(admin, doomed.KeyID)
	require.NoError(t, err)
	assert.Equal(t, kms.KeyStatePendingDeletion, d.KeyState)
	assert.Equal(t, kmstest.Epoch.Add(30*24*time.Hour), d.DeletionDate)

	// The policy still decides, the grant still allows, the data opens.
	report := kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::111122223333:role/report"})
	dec, err := r2.Decrypt(report, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	assert.Equal(t, "order 17", string(dec.Plaintext))
	_, err = r2.Decrypt(app, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: kms.EncryptionContext{"app": "other"}})
	require.ErrorIs(t, err, kms.ErrAccessDenied)

	// The due work happens on time: not a day early, then both at once.
	r2.Clock.Advance(29 * 24 * time.Hour)
	out, err := r2.RunDue(ctx)
	require.NoError(t, err)
	assert.Empty(t, out.Rotated)
	assert.Empty(t, out.Deleted)
	r2.Clock.Advance(61 * 24 * time.Hour)
	out, err = r2.RunDue(ctx)
	require.NoError(t, err)
	require.Len(t, out.Rotated, 1)
	assert.Equal(t, k.KeyID, out.Rotated[0].KeyID)
	assert.Equal(t, []string{doomed.KeyID}, out.Deleted)
	dec, err = r2.Decrypt(app, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err, "rotation never breaks old data")
	assert.Equal(t, "order 17", string(dec.Plaintext))
}

// TestNothingSecretAtRest imports known key material, uses it, and scans
// the database (for SQLite, every file of it) for that material and for the
// root key, raw and in the encodings a store might use.
func TestNothingSecretAtRest(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			testNothingSecretAtRest(t, dialect)
		})
	}
}

func testNothingSecretAtRest(t *testing.T, dialect string) {
	ctx := context.Background()
	rootBytes := bytes.Repeat([]byte{0x5a, 0xa5, 0x3c}, 11)[:32]
	root, err := kms.NewAESRootKey(rootBytes, nil)
	require.NoError(t, err)
	var dump func() []byte
	var store *sqlstore.Store
	if dialect == "sqlite" {
		dir := t.TempDir()
		store, err = sqlstore.OpenSQLite(ctx, filepath.Join(dir, "keys.db"))
		require.NoError(t, err)
		dump = func() []byte {
			var all []byte
			files, _ := filepath.Glob(filepath.Join(dir, "*"))
			for _, f := range files {
				b, err := os.ReadFile(f)
				require.NoError(t, err)
				all = append(all, b...)
			}
			return all
		}
	} else {
		dsn := schemaDSN(t)
		store, err = sqlstore.OpenPostgres(ctx, dsn)
		require.NoError(t, err)
		dump = func() []byte { return dumpPostgres(t, dsn) }
	}
	defer store.Close()
	r := kmstest.New(t, kms.Config{Store: store, RootKey: root})

	secrets := map[string][]byte{"root key": rootBytes}
	aesKey := make([]byte, 32)
	_, _ = rand.Read(aesKey)
	secrets["imported AES key"] = aesKey
	r.ImportKey(kms.SymmetricDefault, kms.EncryptDecrypt, aesKey)
	hmacKey := make([]byte, 48)
	_, _ = rand.Read(hmacKey)
	secrets["imported HMAC key"] = hmacKey
	r.ImportKey(kms.HMAC384, kms.GenerateVerifyMac, hmacKey)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	require.NoError(t, err)
	secrets["imported EC private key"] = der
	d, err := ec.Bytes()
	require.NoError(t, err)
	secrets["imported EC scalar"] = d
	r.ImportKey(kms.ECCNISTP256, kms.SignVerify, der)
	// A generated key, rotated, with a chained audit log in the same store.
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	_, err = r.RotateKeyOnDemand(ctx, k.KeyID)
	require.NoError(t, err)
	dk, err := r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: kms.AES256})
	require.NoError(t, err)
	secrets["data key"] = dk.Plaintext
	var logBuf bytes.Buffer
	_, err = kms.OpenChainedLog(ctx, &logBuf, kms.ChainConfig{Store: store, RootKey: root})
	require.NoError(t, err)

	db := dump()
	require.NotEmpty(t, db)
	require.True(t, bytes.Contains(db, []byte(k.KeyID)), "the scan sees the stored records")
	for name, secret := range secrets {
		for _, form := range [][]byte{
			secret, secret[:16],
			[]byte(hex.EncodeToString(secret)), []byte(strings.ToUpper(hex.EncodeToString(secret))),
			[]byte(base64.StdEncoding.EncodeToString(secret)), []byte(base64.RawStdEncoding.EncodeToString(secret)),
			[]byte(base64.URLEncoding.EncodeToString(secret)), []byte(base64.RawURLEncoding.EncodeToString(secret)),
		} {
			assert.False(t, bytes.Contains(db, form), "the database holds the %s", name)
		}
	}
}

// dumpPostgres returns every row of the store's tables as text.
func dumpPostgres(t *testing.T, dsn string) []byte {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	var out []byte
	for _, table := range []string{"pocketkms_keys", "pocketkms_aliases", "pocketkms_audit_chains", "pocketkms_settings", "pocketkms_schema"} {
		rows, err := db.Query("SELECT t::text FROM " + table + " t")
		require.NoError(t, err)
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out = append(out, s...)
			out = append(out, '\n')
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	// Bytes columns print as \x<hex>; the hex scan above covers them.
	return out
}
