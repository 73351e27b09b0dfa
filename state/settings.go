package state

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/s3sync/s3sync/remote"
)

// The state's settings, each under its key in the journal's meta bucket.
// A getter says "not known" (the zero value) for a setting never kept and
// for one it cannot read: none of them is worth failing a mount or status
// over.
const (
	metaWorkdirID = "workdir_id"
	metaRemote    = "remote"
	// metaEndpoint is the endpoint URL the remote was reached at, or
	// endpointAWS: one bucket name may exist on two stores (MinIO at home,
	// Wasabi), and the cache describes only one of them.
	metaEndpoint    = "endpoint"
	metaConditions  = "conditions"
	metaWriterID    = "writer_id"
	metaVersioning  = "bucket_versioning"
	metaScanRefusal = "scan_refused_deletions"
)

// Versioning is the bucket's versioning state as the mount learned it at
// start-up, so that status shows it mounted or not; unknown for a state
// written before it was kept.
func (s *State) Versioning() remote.Versioning {
	b, err := s.j.Meta(metaVersioning)
	if err != nil || len(b) == 0 {
		return remote.VersioningUnknown
	}
	return remote.Versioning(b)
}

// SetVersioning keeps v; durable on return.
func (s *State) SetVersioning(v remote.Versioning) error {
	return s.j.SetMeta(metaVersioning, []byte(v))
}

// keptConditions is the probe's answer as the state keeps it.
type keptConditions struct {
	Remote string `json:"remote"` // endpoint and URL probed
	remote.Conditions
}

// Conditions is what the store honours of conditional requests, as probed
// at where (the endpoint and remote URL the probe wrote to); nil and "" if
// it was never probed.
func (s *State) Conditions() (c *remote.Conditions, where string) {
	b, err := s.j.Meta(metaConditions)
	if err != nil || len(b) == 0 {
		return nil, ""
	}
	var k keptConditions
	if json.Unmarshal(b, &k) != nil {
		return nil, ""
	}
	return &k.Conditions, k.Remote
}

// SetConditions keeps c as probed at where; durable on return.
func (s *State) SetConditions(where string, c remote.Conditions) error {
	b, err := json.Marshal(keptConditions{Remote: where, Conditions: c})
	if err != nil {
		return err
	}
	return s.j.SetMeta(metaConditions, b)
}

// WriterID is the state's name in its objects' metadata
// (syncer.DrainOptions.WriterID): made once, then kept. It is "" if it
// cannot be kept: its own writes could not be told after a restart.
func (s *State) WriterID() string {
	if b, err := s.j.Meta(metaWriterID); err == nil && len(b) > 0 {
		return string(b)
	}
	var rnd [12]byte
	rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	if s.j.SetMeta(metaWriterID, []byte(id)) != nil {
		return ""
	}
	return id
}

// ScanRefusal: files gone from WORKDIR while it was not mounted that the
// bucket keeps, because deleting them was over --max-delete. The state
// keeps the last start-up's, so that status shows them, mounted or not,
// and not only the log of that mount.
type ScanRefusal struct {
	Files int       `json:"files"` // gone from WORKDIR, kept in the bucket
	Of    int       `json:"of"`    // files the bucket held for WORKDIR
	Limit string    `json:"limit"` // the limit that refused, as a flag
	Allow string    `json:"allow"` // the flag that allows deleting them
	At    time.Time `json:"at"`    // the start-up that refused
}

// ScanRefusal is what SetScanRefusal kept; nil when nothing was refused.
func (s *State) ScanRefusal() *ScanRefusal {
	b, err := s.j.Meta(metaScanRefusal)
	if err != nil || len(b) == 0 {
		return nil
	}
	var r ScanRefusal
	if json.Unmarshal(b, &r) != nil || r.Files == 0 {
		return nil
	}
	return &r
}

// SetScanRefusal keeps r; nil clears what an earlier start-up kept, since
// every start-up scan decides afresh (the files are back, were deleted, or
// the mount runs without --delete and keeps them by design). Durable on
// return.
func (s *State) SetScanRefusal(r *ScanRefusal) error {
	b := []byte("{}")
	if r != nil {
		var err error
		if b, err = json.Marshal(r); err != nil {
			return err
		}
	}
	return s.j.SetMeta(metaScanRefusal, b)
}
