package webhook

import (
	"context"
	"net/netip"
)

// Resolver looks host names up; *net.Resolver is one. Tests give a resolver of their own
// rather than depend on real DNS.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// blocked are the networks a webhook may not reach unless private addresses are allowed, on
// top of what netip.Addr's Is methods name: everything that is not a public unicast address.
// IPv4-mapped addresses are unmapped, and NAT64 and 6to4 addresses checked by the IPv4 address
// they embed, before the check.
var blocked = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network", with 0.0.0.0 the unspecified address
		"100.64.0.0/10",   // carrier-grade NAT (shared address space)
		"169.254.0.0/16",  // link-local, with the cloud metadata service 169.254.169.254
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"192.88.99.0/24",  // 6to4 relay anycast
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"240.0.0.0/4",     // reserved, with the broadcast address 255.255.255.255
		"::/96",           // unspecified, loopback and the deprecated IPv4-compatible addresses
		"100::/64",        // discard-only
		"2001::/32",       // Teredo: a tunnel to an IPv4 address hidden in the address
		"2001:10::/28",    // ORCHID
		"2001:db8::/32",   // documentation
		"64:ff9b:1::/48",  // local-use IPv4/IPv6 translation
		"fec0::/10",       // site-local (deprecated)
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Forbidden reports whether a webhook may not connect to a: a private, loopback, link-local,
// unique-local, multicast, unspecified, carrier-grade NAT, reserved or documentation address,
// or an IPv6 address that embeds such an IPv4 address (IPv4-mapped, NAT64, 6to4).
func Forbidden(a netip.Addr) bool {
	if !a.IsValid() {
		return true
	}
	a = a.Unmap()
	if v4, ok := embedded(a); ok {
		return Forbidden(v4)
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() || a.IsMulticast() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range blocked {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// embedded returns the IPv4 address that a NAT64 (64:ff9b::a.b.c.d) or 6to4 (2002:aabb:ccdd::)
// address leads to.
func embedded(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixTo4.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}
