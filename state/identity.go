package state

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/cache"
)

// A state dir knows the WORKDIR and the remote it was made for. Its cache
// says what the bucket holds for each file of that folder, so a mount of
// another folder — an external disk that did not mount, a folder a script
// made again, a path that now names something else — would take every
// missing file for a deletion. Such a mount is refused until the user says
// --adopt.

// rootID identifies WORKDIR's root directory across mounts and reboots.
type rootID struct {
	// FSUUID is the filesystem's UUID (from /dev/disk/by-uuid), where udev
	// provides it: device numbers of removable disks change across
	// reboots, the UUID does not.
	FSUUID string `json:"fs_uuid,omitempty"`
	// FSID is statfs's f_fsid, when not zero: on ext4 and btrfs it derives
	// from the UUID, on others (XFS) from the device number.
	FSID string `json:"fsid,omitempty"`
	Dev  uint64 `json:"dev"`
	Ino  uint64 `json:"ino"`
	// Birth is the directory's creation time (ns), where the filesystem
	// keeps one, and Gen its inode generation (FS_IOC_GETVERSION: ext4,
	// XFS, btrfs), "" where there is none: a folder removed and made again
	// may get the same inode number and, within a clock tick, the same
	// birth time, but not the same generation.
	Birth int64  `json:"birth_ns,omitempty"`
	Gen   string `json:"gen,omitempty"`
}

// fsIocGetVersion is FS_IOC_GETVERSION, _IOR('v', 1, long).
const fsIocGetVersion = 0x80007601 | uint(unsafe.Sizeof(uintptr(0)))<<16

func readRootID(dir string) (rootID, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO|unix.STATX_BTIME, &stx); err != nil {
		return rootID{}, fmt.Errorf("stat %s: %w", dir, err)
	}
	id := rootID{Dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), Ino: stx.Ino}
	if stx.Mask&unix.STATX_BTIME != 0 {
		id.Birth = stx.Btime.Sec*1e9 + int64(stx.Btime.Nsec)
	}
	var sfs unix.Statfs_t
	if unix.Statfs(dir, &sfs) == nil && (sfs.Fsid.Val[0] != 0 || sfs.Fsid.Val[1] != 0) {
		id.FSID = fmt.Sprintf("%08x%08x", uint32(sfs.Fsid.Val[0]), uint32(sfs.Fsid.Val[1]))
	}
	id.FSUUID = fsUUID(stx.Dev_major, stx.Dev_minor)
	if fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		if gen, err := unix.IoctlGetUint32(fd, fsIocGetVersion); err == nil {
			id.Gen = fmt.Sprintf("%08x", gen)
		}
		unix.Close(fd)
	}
	return id, nil
}

// fsUUID finds the UUID of the filesystem on device major:minor: the
// mount's source in /proc/self/mountinfo, looked up in /dev/disk/by-uuid.
// "" when either is missing (no udev, a network or virtual filesystem).
func fsUUID(major, minor uint32) string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	want := fmt.Sprintf("%d:%d", major, minor)
	source := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[2] != want {
			continue
		}
		for i, fl := range fields {
			if fl == "-" && i+2 < len(fields) {
				source = fields[i+2]
			}
		}
		break
	}
	if !strings.HasPrefix(source, "/dev/") {
		return ""
	}
	dev, err := filepath.EvalSymlinks(source)
	if err != nil {
		return ""
	}
	ents, err := os.ReadDir("/dev/disk/by-uuid")
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if target, err := filepath.EvalSymlinks(filepath.Join("/dev/disk/by-uuid", e.Name())); err == nil && target == dev {
			return e.Name()
		}
	}
	return ""
}

// sameFS compares by the strongest identifier both sides have.
func (a rootID) sameFS(b rootID) bool {
	switch {
	case a.FSUUID != "" && b.FSUUID != "":
		return a.FSUUID == b.FSUUID
	case a.FSID != "" && b.FSID != "":
		return a.FSID == b.FSID
	}
	return a.Dev == b.Dev
}

func (a rootID) same(b rootID) bool {
	return a.sameFS(b) && a.Ino == b.Ino && (a.Birth == 0 || b.Birth == 0 || a.Birth == b.Birth) &&
		(a.Gen == "" || b.Gen == "" || a.Gen == b.Gen)
}

// String says what a person can check: "inode 1234, made 2025-01-02
// 03:04:05, on filesystem UUID 1b2c…".
func (a rootID) String() string {
	s := fmt.Sprintf("inode %d", a.Ino)
	if a.Birth != 0 {
		s += ", made " + time.Unix(0, a.Birth).Format("2006-01-02 15:04:05")
	}
	switch {
	case a.FSUUID != "":
		s += ", on filesystem UUID " + a.FSUUID
	case a.FSID != "":
		s += ", on filesystem id " + a.FSID
	default:
		s += fmt.Sprintf(", on device %d:%d", unix.Major(a.Dev), unix.Minor(a.Dev))
	}
	return s
}

// MismatchError is Claim's refusal: the state was made for another
// WORKDIR, remote or store. Its message is one line that says which, and
// how to take them on (--adopt).
type MismatchError struct{ msg string }

func (e *MismatchError) Error() string { return e.msg }

// Claim refuses a mount whose WORKDIR or remote is not the one the state
// was made for, with a *MismatchError, unless adopt. Adopting forgets the
// cache and the unsent records, so the mount compares WORKDIR with the
// bucket as a first mount does, and a file only in the bucket is never
// deleted. A state made before identities were kept takes the current
// WORKDIR as its own (it was made for it); --max-delete still guards its
// start-up scan. It records the current identity and remote.
//
// endpoint is the endpoint URL in use, "" for AWS's own; it counts by the
// store it names (storeOf), so another spelling of the same provider's
// endpoint (a region, dual-stack) is no other remote.
func (s *State) Claim(workdir, remoteURL, endpoint string, adopt bool, log *slog.Logger) error {
	j, c, stateDir := s.j, s.c, s.dir
	cur, err := readRootID(workdir)
	if err != nil {
		return fmt.Errorf("WORKDIR: %w", err)
	}
	var old rootID
	b, err := j.Meta(metaWorkdirID)
	if err != nil {
		return err
	}
	known := len(b) > 0 && json.Unmarshal(b, &old) == nil
	oldRemote, err := j.Meta(metaRemote)
	if err != nil {
		return err
	}
	oldEndpoint, err := j.Meta(metaEndpoint)
	if err != nil {
		return err
	}
	if endpoint == "" {
		endpoint = endpointAWS
	}
	otherDir := known && !old.same(cur)
	otherRemote := len(oldRemote) > 0 && string(oldRemote) != remoteURL
	otherStore := len(oldEndpoint) > 0 && storeOf(string(oldEndpoint)) != storeOf(endpoint)
	if (otherDir || otherRemote || otherStore) && !adopt {
		var what []string
		if otherDir {
			what = append(what, fmt.Sprintf("WORKDIR %s is not the folder this state was made for (that was %s; this is %s)", workdir, old, cur))
		}
		if otherRemote {
			what = append(what, fmt.Sprintf("the state in %s mirrors to %s, not %s", stateDir, oldRemote, remoteURL))
		}
		if otherStore {
			what = append(what, fmt.Sprintf("the state in %s mirrors to the store at %s, not the one at %s (a bucket of that name there is another bucket)",
				stateDir, showEndpoint(string(oldEndpoint)), showEndpoint(endpoint)))
		}
		return &MismatchError{msg: strings.Join(what, ", and ") +
			"; if that is on purpose (a folder moved or restored, another bucket or store), mount again with --adopt: WORKDIR is then compared with the bucket and nothing is deleted"}
	}
	if otherDir || otherRemote || otherStore {
		dropped, err := j.Reset()
		if err != nil {
			return err
		}
		forgot, err := c.Reset()
		if err != nil {
			return err
		}
		if otherRemote || otherStore {
			// Their upload IDs belong to the old bucket.
			if err := forgetUploads(c); err != nil {
				return err
			}
		}
		log.Warn("--adopt: the state now belongs to this WORKDIR and remote; what it knew of the old ones is dropped, and WORKDIR is compared with the bucket (nothing only in the bucket is deleted)",
			"workdir", workdir, "remote", remoteURL, "endpoint", showEndpoint(endpoint), "unsent_changes_dropped", dropped, "cache_entries_dropped", forgot)
	}
	if string(oldEndpoint) != endpoint {
		if err := j.SetMeta(metaEndpoint, []byte(endpoint)); err != nil {
			return err
		}
	}
	if cb, _ := json.Marshal(cur); string(cb) != string(b) {
		if err := j.SetMeta(metaWorkdirID, cb); err != nil {
			return err
		}
	}
	if string(oldRemote) != remoteURL {
		return j.SetMeta(metaRemote, []byte(remoteURL))
	}
	return nil
}

func forgetUploads(c *cache.Cache) error {
	var paths []string
	if err := c.Uploads(func(path string, _ cache.Upload) error {
		paths = append(paths, path)
		return nil
	}); err != nil {
		return err
	}
	for _, p := range paths {
		if err := c.DeleteUpload(p); err != nil {
			return err
		}
	}
	return nil
}

// endpointAWS is the endpoint kept for AWS's own endpoints (no
// --endpoint-url, endpoint_url or AWS_ENDPOINT_URL).
const endpointAWS = "aws"

// storeOf names the store an endpoint URL reaches, as coarsely as keeps
// users of one provider from being refused for spelling it another way:
// every *.amazonaws.com endpoint is AWS; another DNS name counts by its
// registered domain (s3.wasabisys.com and s3.eu-central-1.wasabisys.com
// are one store); an IP address or a one-label name (a NAS) by itself,
// and every loopback address is one. Ports never count: a tunnel or an
// explicit :443 changes them for the same store. Two accounts of one
// provider (two Cloudflare R2 accounts) are not told apart.
func storeOf(endpoint string) string {
	if endpoint == "" || endpoint == endpointAWS {
		return endpointAWS
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" {
		return strings.ToLower(endpoint)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return "localhost"
	} else if ip != nil {
		return ip.String()
	}
	switch {
	case host == "amazonaws.com" || strings.HasSuffix(host, ".amazonaws.com"):
		return endpointAWS
	case strings.HasSuffix(host, ".amazonaws.com.cn"):
		return "aws-cn" // its own partition, with its own accounts
	}
	labels := strings.Split(host, ".")
	n := 2
	if k := len(labels); k >= 3 && len(labels[k-1]) == 2 && secondLevel[labels[k-2]] {
		n = 3 // example.co.uk
	}
	if len(labels) <= n {
		return host
	}
	return strings.Join(labels[len(labels)-n:], ".")
}

// secondLevel are the labels under which country domains register names
// (co.uk, com.au, ne.jp).
var secondLevel = map[string]bool{"co": true, "com": true, "net": true, "org": true, "ac": true, "gov": true, "edu": true, "ne": true, "or": true}

// showEndpoint is an endpoint as a message names it.
func showEndpoint(endpoint string) string {
	if endpoint == "" || endpoint == endpointAWS {
		return "AWS (no --endpoint-url)"
	}
	return endpoint
}
