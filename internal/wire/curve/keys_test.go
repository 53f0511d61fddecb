package curve

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestLoadOrCreateConcurrent: several creators of one keys directory at once
// always leave (and return) one consistent pair.
func TestLoadOrCreateConcurrent(t *testing.T) {
	for round := range 20 {
		dir := filepath.Join(t.TempDir(), "keys")
		const n = 8
		var (
			wg    sync.WaitGroup
			pairs [n]KeyPair
			errs  [n]error
		)
		for i := range n {
			wg.Go(func() { pairs[i], errs[i] = LoadOrCreate(dir) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: creator %d: %v", round, i, errs[i])
			}
			if pairs[i] != pairs[0] {
				t.Fatalf("round %d: creators got different pairs", round)
			}
		}
		sec, _ := os.ReadFile(filepath.Join(dir, secretFile))
		pub, _ := os.ReadFile(filepath.Join(dir, publicFile))
		sk, err := ParseSecretKey(strings.TrimSpace(string(sec)))
		if err != nil {
			t.Fatal(err)
		}
		kp, _ := KeyPairFromSecret(sk)
		if kp != pairs[0] || strings.TrimSpace(string(pub)) != kp.Public.String() {
			t.Fatalf("round %d: server.key and server.key_secret are from different pairs", round)
		}
	}
}
