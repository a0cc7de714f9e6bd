package testenv

import "testing"

func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"amqp://guest:guest@127.0.0.1:5672/":          "127.0.0.1:5672",
		"mongodb://127.0.0.1:27017/":                  "127.0.0.1:27017",
		"mongodb://a:1,b:2/db":                        "a:1",
		"u:p@tcp(127.0.0.1:3306)/auth?parseTime=true": "127.0.0.1:3306",
		"127.0.0.1:1025":                              "127.0.0.1:1025",
		"http://127.0.0.1:8025":                       "127.0.0.1:8025",
		"not an address":                              "",
	} {
		if got := hostPort(in); got != want {
			t.Errorf("hostPort(%q) = %q, want %q", in, got, want)
		}
	}
}
