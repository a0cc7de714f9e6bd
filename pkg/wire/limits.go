package wire

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// LimitNames are the names of a user's limits, as the admin commands take them.
var LimitNames = []string{"quota-bytes", "max-open-uploads", "max-active-jobs", "max-duration"}

// SetLimit sets the limit called name (one of LimitNames) of l from v: a size (quota-bytes,
// like 20GiB), a whole number (max-open-uploads, max-active-jobs) or a duration (max-duration,
// like 2h); 0 for no limit, or "default" to take the server's default.
func (l *Limits) SetLimit(name, v string) error {
	v = strings.TrimSpace(v)
	def := strings.EqualFold(v, "default")
	bad := func(what string) error { return fmt.Errorf("--%s: %q is not %s, 0 or \"default\"", name, v, what) }
	switch name {
	case "quota-bytes":
		l.QuotaBytes = nil
		if !def {
			n, err := ParseSize(v)
			if err != nil {
				return bad("a size like 20GiB")
			}
			l.QuotaBytes = &n
		}
	case "max-open-uploads", "max-active-jobs":
		var p *int
		if !def {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return bad("a whole number")
			}
			p = &n
		}
		if name == "max-open-uploads" {
			l.MaxOpenUploads = p
		} else {
			l.MaxActiveJobs = p
		}
	case "max-duration":
		l.MaxDuration = nil
		if !def {
			d, err := time.ParseDuration(v)
			if v == "0" {
				d, err = 0, nil
			}
			if err != nil || d < 0 {
				return bad("a duration like 2h")
			}
			secs := d.Seconds()
			l.MaxDuration = &secs
		}
	default:
		return fmt.Errorf("no limit called %q", name)
	}
	return nil
}
