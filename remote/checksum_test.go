package remote

import (
	"crypto/rand"
	"hash/crc64"
	"testing"
)

func crcOf(b []byte) uint64 { return crc64.Update(0, crc64NVMETable, b) }

func TestCRC64Combine(t *testing.T) {
	data := make([]byte, 100_003)
	rand.Read(data)
	for _, cut := range []int{0, 1, 7, 4096, 65536, 100_002, 100_003} {
		a, b := data[:cut], data[cut:]
		if got, want := crc64Combine(crcOf(a), crcOf(b), int64(len(b))), crcOf(data); got != want {
			t.Errorf("cut %d: combine = %x, want %x", cut, got, want)
		}
	}
}
