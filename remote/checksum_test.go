package remote

import (
	"crypto/rand"
	"hash/crc64"
	"testing"
)

// crcOf is the standard library's CRC-64/NVME, as a check on both
// crc64Combine and the library NewCRC64NVME uses.
func crcOf(b []byte) uint64 { return crc64.Checksum(b, crc64.MakeTable(crc64NVMEPoly)) }

func TestCRC64NVMEMatchesTables(t *testing.T) {
	data := make([]byte, 1<<20+13)
	rand.Read(data)
	h := NewCRC64NVME()
	h.Write(data[:5])
	h.Write(data[5:])
	if h.Sum64() != crcOf(data) || sumBytes(data, false).crc != crcOf(data) {
		t.Fatal("NewCRC64NVME disagrees with hash/crc64")
	}
}

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
