package kms

import (
	"context"
	"fmt"

	"github.com/pocketkms/kms/internal/keys"
)

// MaxMacMessageSize bounds GenerateMac and VerifyMac messages.
const MaxMacMessageSize = 4096

// GenerateMacInput is the input of GenerateMac.
type GenerateMacInput struct {
	// KeyID names a GENERATE_VERIFY_MAC key.
	KeyID string
	// Message is 1 to 4,096 bytes.
	Message      []byte
	MacAlgorithm MacAlgorithm
}

// GenerateMacOutput is the result of GenerateMac.
type GenerateMacOutput struct {
	// Mac is the full HMAC tag.
	Mac          []byte
	KeyID        string
	KeyVersion   uint32 // the primary version that computed the tag
	MacAlgorithm MacAlgorithm
}

// VerifyMacInput is the input of VerifyMac.
type VerifyMacInput struct {
	KeyID        string
	Message      []byte
	Mac          []byte
	MacAlgorithm MacAlgorithm
	// KeyVersion pins a version; 0 tries the primary version and then every
	// other enabled version, newest first.
	KeyVersion uint32
}

// VerifyMacOutput is the result of a successful VerifyMac.
type VerifyMacOutput struct {
	MacValid     bool // always true: an invalid tag is an error
	KeyID        string
	KeyVersion   uint32
	MacAlgorithm MacAlgorithm
}

func macPrep(e *keyEntry, alg MacAlgorithm, msg []byte) error {
	if err := needUsage(e, GenerateVerifyMac); err != nil {
		return err
	}
	if h, ok := macs[alg]; !ok || h != e.info.typ.Hash {
		return fmt.Errorf("%w: %s keys do not compute %q", ErrInvalidUsage, e.rec.Spec, alg)
	}
	if len(msg) == 0 || len(msg) > MaxMacMessageSize {
		return fmt.Errorf("%w: Message must be 1 to %d bytes", ErrInvalidArgument, MaxMacMessageSize)
	}
	return nil
}

// GenerateMac computes the HMAC of a message with the primary version of
// an HMAC key.
func (r *KeyRing) GenerateMac(ctx context.Context, in GenerateMacInput) (*GenerateMacOutput, error) {
	c := r.begin(ctx, OpGenerateMac)
	out, err := func() (*GenerateMacOutput, error) {
		e, err := r.usableKey(ctx, &c, in.KeyID)
		if err != nil {
			return nil, err
		}
		if err := macPrep(e, in.MacAlgorithm, in.Message); err != nil {
			return nil, err
		}
		if err := c.authorize(OpGenerateMac, e, nil, string(in.MacAlgorithm)); err != nil {
			return nil, err
		}
		c.ev.KeyVersion = e.rec.Primary
		return &GenerateMacOutput{Mac: e.primary().MAC(in.Message), KeyID: e.arn, KeyVersion: e.rec.Primary, MacAlgorithm: in.MacAlgorithm}, nil
	}()
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

// VerifyMac checks an HMAC tag in constant time. Only full-length tags are
// accepted. An invalid tag is an error matching ErrInvalidMac.
func (r *KeyRing) VerifyMac(ctx context.Context, in VerifyMacInput) (*VerifyMacOutput, error) {
	c := r.begin(ctx, OpVerifyMac)
	out, err := func() (*VerifyMacOutput, error) {
		e, err := r.usableKey(ctx, &c, in.KeyID)
		if err != nil {
			return nil, err
		}
		if err := macPrep(e, in.MacAlgorithm, in.Message); err != nil {
			return nil, err
		}
		if len(in.Mac) == 0 || len(in.Mac) > 64 {
			return nil, fmt.Errorf("%w: Mac must be 1 to 64 bytes", ErrInvalidArgument)
		}
		if err := c.authorize(OpVerifyMac, e, nil, string(in.MacAlgorithm)); err != nil {
			return nil, err
		}
		v, err := r.eachVersion(e, in.KeyVersion, func(k *keys.Key) bool { return k.VerifyMAC(in.Message, in.Mac) })
		if err == errNoVersion {
			return nil, ErrInvalidMac
		}
		if err != nil {
			return nil, err
		}
		c.ev.KeyVersion = v
		return &VerifyMacOutput{MacValid: true, KeyID: e.arn, KeyVersion: v, MacAlgorithm: in.MacAlgorithm}, nil
	}()
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}
