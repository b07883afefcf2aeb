package host

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// TrustError is a plugin, or the plugin directory, that someone other
// than root or the agent's own user could change: a group- or
// world-writable mode, or another owner. Such a plugin is not run: who can
// change it can run code as the agent, with the agent's secrets.
type TrustError struct {
	Path    string
	What    string // "plugin" or "plugin directory"
	Problem string // what is wrong
	Fix     string // the command that fixes it
}

func (e *TrustError) Error() string {
	refusal := "refusing to run it"
	if e.What == "plugin directory" {
		refusal = "refusing to run plugins from it"
	}
	return fmt.Sprintf("%s %s %s; %s until fixed: %s", e.What, e.Path, e.Problem, refusal, e.Fix)
}

// checkTrust refuses a file or directory that is not owned by root or by
// the user the agent runs as, or that its group or others may write.
func checkTrust(path, what string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	me := uint32(os.Geteuid())
	if st.Uid != 0 && st.Uid != me {
		return &TrustError{Path: path, What: what,
			Problem: fmt.Sprintf("is owned by uid %d, neither root nor the user the agent runs as (uid %d)", st.Uid, me),
			Fix:     fmt.Sprintf("chown root %s (or chown %d)", path, me)}
	}
	mode := fi.Mode().Perm()
	var who []string
	if mode&0o020 != 0 {
		who = append(who, "its group")
	}
	if mode&0o002 != 0 {
		who = append(who, "every user")
	}
	if len(who) > 0 {
		flag := "g-w"
		switch {
		case len(who) == 2:
			flag = "go-w"
		case mode&0o002 != 0:
			flag = "o-w"
		}
		return &TrustError{Path: path, What: what,
			Problem: fmt.Sprintf("is writable by %s (mode %04o)", strings.Join(who, " and "), mode),
			Fix:     fmt.Sprintf("chmod %s %s", flag, path)}
	}
	return nil
}
