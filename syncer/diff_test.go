package syncer

import (
	"testing"
	"time"
)

func TestShouldTransfer(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	cases := []struct {
		name     string
		dir      Direction
		src, dst Side
		cmp      Compare
		want     bool
	}{
		{"upload new size", Upload, Side{2, t0}, Side{1, t0}, Compare{}, true},
		{"upload same", Upload, Side{1, t0}, Side{1, t0}, Compare{}, false},
		{"upload local newer", Upload, Side{1, ms(2000)}, Side{1, t0}, Compare{}, true},
		{"upload remote newer", Upload, Side{1, t0}, Side{1, ms(2000)}, Compare{}, false},
		{"upload same second, whole-second store", Upload, Side{1, ms(700)}, Side{1, t0}, Compare{}, false},
		{"upload newer, size-only", Upload, Side{1, ms(5000)}, Side{1, t0}, Compare{SizeOnly: true}, false},
		{"upload size differs, size-only", Upload, Side{1, t0}, Side{3, t0}, Compare{SizeOnly: true}, true},
		{"copy source newer", Copy, Side{1, ms(1000)}, Side{1, t0}, Compare{}, true},
		{"copy dest newer", Copy, Side{1, t0}, Side{1, ms(1000)}, Compare{}, false},
		{"download object newer, same size", Download, Side{1, ms(3000)}, Side{1, t0}, Compare{}, false},
		{"download local newer", Download, Side{1, t0}, Side{1, ms(3000)}, Compare{}, true},
		{"download equal", Download, Side{1, t0}, Side{1, t0}, Compare{}, false},
		{"download object newer, exact", Download, Side{1, ms(3000)}, Side{1, t0}, Compare{ExactTimestamps: true}, true},
		{"download equal, exact", Download, Side{1, t0}, Side{1, t0}, Compare{ExactTimestamps: true}, false},
		{"download size differs", Download, Side{5, t0}, Side{1, t0}, Compare{}, true},
		{"ns precision both sides", Upload, Side{1, ms(1500).Add(1)}, Side{1, ms(1500)}, Compare{}, true},
	}
	for _, c := range cases {
		if got := ShouldTransfer(c.dir, c.src, c.dst, c.cmp); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFilters(t *testing.T) {
	type r struct {
		inc bool
		pat string
	}
	cases := []struct {
		rules []r
		path  string
		want  bool // excluded
	}{
		{nil, "a.txt", false},
		{[]r{{false, "*.txt"}}, "a.txt", true},
		{[]r{{false, "*.txt"}}, "sub/dir/a.txt", true}, // "*" crosses "/"
		{[]r{{false, "*.txt"}}, "a.txt.bak", false},
		{[]r{{false, "*"}, {true, "*.jpg"}}, "p/x.jpg", false},
		{[]r{{false, "*"}, {true, "*.jpg"}}, "p/x.png", true},
		{[]r{{true, "*.jpg"}, {false, "*"}}, "p/x.jpg", true}, // last match wins
		{[]r{{false, "logs/*"}}, "logs/a/b.log", true},
		{[]r{{false, "logs/*"}}, "mylogs/a", false},
		{[]r{{false, "?.md"}}, "é.md", true},
		{[]r{{false, "[ab]*"}}, "b1", true},
		{[]r{{false, "[!ab]*"}}, "b1", false},
		{[]r{{false, "[a-c].x"}}, "c.x", true},
		{[]r{{false, "./secret"}}, "secret", true},
	}
	for _, c := range cases {
		var f Filters
		for _, x := range c.rules {
			f.Add(x.inc, x.pat)
		}
		if got := f.Excluded(c.path); got != c.want {
			t.Errorf("%v on %q: excluded=%v, want %v", c.rules, c.path, got, c.want)
		}
	}
}
