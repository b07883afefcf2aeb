package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// socketMode lets the agent's user and group use the socket: connecting
// to a unix socket needs write permission on it.
const socketMode = 0o660

// errNoSocketDir: the socket's directory does not exist (the default
// /run/sluice outside systemd).
var errNoSocketDir = errors.New("the socket's directory does not exist")

// socketListener is the API's unix socket.
type socketListener struct {
	*net.UnixListener
	path string
	file os.FileInfo // the socket file as created, so that only it is removed
}

// listenSocket creates a unix socket at path, mode 0660, group the
// agent's. It is bound inside a new private (0700) directory, given its
// mode there, then renamed into place: nobody can connect before the mode
// is set, whatever the umask. A socket left at path by an agent that
// died is replaced; a socket something still answers on, or anything
// that is not a socket, stops the start.
func listenSocket(path string) (*socketListener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", errNoSocketDir, dir)
	}
	if err := checkStaleSocket(path); err != nil {
		return nil, err
	}
	tmp, err := privateDir(dir)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bound := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bound, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // the bound name is gone once renamed
	fail := func(err error) (*socketListener, error) {
		ln.Close()
		return nil, err
	}
	if err := os.Chmod(bound, socketMode); err != nil {
		return fail(err)
	}
	// Under a setgid directory the file took the directory's group. Not
	// being allowed to change it (a user outside the group) is no reason
	// to fail: the mode still keeps others out.
	_ = os.Lchown(bound, -1, os.Getegid())
	if err := os.Rename(bound, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &socketListener{UnixListener: ln, path: path, file: fi}, nil
}

// remove deletes the socket file if it is still the one listenSocket
// made (a newer agent may have replaced it). Call it after Close.
func (s *socketListener) remove() error {
	fi, err := os.Lstat(s.path)
	if err != nil || !os.SameFile(fi, s.file) {
		return nil
	}
	return os.Remove(s.path)
}

// checkStaleSocket returns nil if path is free or holds a socket nothing
// answers on.
func checkStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; not replacing it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("%s is in use: another process (another agent?) answers on it", path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil // left by an agent that died; the rename replaces it
	}
	return fmt.Errorf("cannot tell whether %s is in use (%w); remove it if no agent runs", path, err)
}

// privateDir makes a new directory only this user can enter, with a name
// of fixed length (config's limit on http.socket counts on it).
func privateDir(parent string) (string, error) {
	for range 10 {
		var b [4]byte
		rand.Read(b[:])
		dir := filepath.Join(parent, ".s"+hex.EncodeToString(b[:]))
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("cannot make a private directory in %s", parent)
}
