package wire

import (
	"strconv"
	"strings"
	"time"
)

// NewPersonalToken is the body of POST /v1/tokens/personal. TTL is a duration such as "30d",
// "12h" or "90m" ("" for the server's default).
type NewPersonalToken struct {
	Name     string `json:"name"`
	TTL      string `json:"ttl,omitempty"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// PersonalToken describes a personal API token, never the token itself.
type PersonalToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	ReadOnly   bool       `json:"read_only"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// CreatedPersonalToken is the answer of POST /v1/tokens/personal: the token, shown once.
type CreatedPersonalToken struct {
	Token string `json:"token"`
	PersonalToken
}

// PersonalTokenList is the answer of GET /v1/tokens/personal.
type PersonalTokenList struct {
	Tokens []PersonalToken `json:"tokens"`
}

// AdminUser is one user as administrators see it.
type AdminUser struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
}

// AdminUserList is the answer of GET /v1/admin/users. Next, when set, is the after= of the
// next page.
type AdminUserList struct {
	Users []AdminUser `json:"users"`
	Next  int64       `json:"next,omitempty"`
}

// ParseTTL reads a lifetime: a Go duration ("12h", "90m") or a number of days ("30d").
func ParseTTL(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d >= 0
}
