package server

import (
	"strings"
	"testing"
)

func TestUserRef(t *testing.T) {
	a := UserRef("Ann@Example.com ")
	if a != UserRef("ann@example.com") {
		t.Fatalf("UserRef depends on letter case or spaces: %s", a)
	}
	if a == UserRef("bob@example.com") || len(a) != 14 || !strings.HasPrefix(a, "u-") || strings.Contains(a, "ann") {
		t.Fatalf("UserRef = %q", a)
	}
}
