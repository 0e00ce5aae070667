package kms_test

import (
	"testing"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/internal/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) kms.Store { return kms.NewMemoryStore() })
}
