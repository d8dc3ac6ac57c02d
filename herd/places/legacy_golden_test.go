package places

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

// The legacy answers are pinned byte for byte (by hash): the New API shares the
// emulator's writer and data set, and must not change a legacy byte.
func TestLegacyAnswersAreUnchanged(t *testing.T) {
	cases := []struct{ loc, radius, key, sha string }{
		{"34.068930,-118.445127", "10000", "", "1a541a99a800a9655ee38d097f7bb2610c41c039faf425c1590f7590a8c00055"},
		{"34.068930,-118.445127", "50000", "", "a949de8a19fccbff31394bf47e077d427e46abb73217277e9dbf8901e581e19d"},
		{"-33.868800,151.209300", "3000", "", "1923284c4e0c3a4b9a38bfd734784714a060aeb2418dadb902ec0aeb7fc35661"},
		{"0,179.995", "5000", "", "d5265fe2b2bb214c8813b28fdb11f61c9b1af13aa3abe0ef58e0a10ea3b7cdb8"},
		{"48.8566,2.3522", "7500.5", "", "6ba4486a54a66d7bb9ece5a611956a44f9e17904a47756c59b9610f2a5283ddb"},
		{"34.07,-118.44", "0.5", "", "60a2bd22964b3b2222337b72be67996d85b4c98c310677a81b17d8cbb433cb92"},
		{"34.07,-118.44", "5000", KeyDenied, "35f5a9baffb2058bee983748ad70139fb0425cf79fcce369a9cffe4257f67e72"},
		{"34.07,-118.44", "5000", KeyOverLimit, "4950aefbb6ae6feac85780db844e8a8ae9045a82779fe1ddd7161eeb45d56ca7"},
		{"94.07,-118.44", "5000", "", "33e6b075b8d4ef8dfe5daeb4188bea28b71a50edbce2a1a8046661398a4f09ff"},
		{"34.07,-118.44", "50001", "", "3c32dae529d5365754889233e9a56c4bc216a25a2a4a796acad763faacbafca7"},
	}
	for _, c := range cases {
		got := fmt.Sprintf("%x", sha256.Sum256(Answer(c.loc, c.radius, c.key)))
		if got != c.sha {
			t.Errorf("Answer(%q, %q, %q): sha256 %s, want %s", c.loc, c.radius, c.key, got, c.sha)
		}
	}
}
