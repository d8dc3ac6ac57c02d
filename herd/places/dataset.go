// Package places answers WHATSAT's "what is near": a client for Google's Places Nearby
// Search, legacy (GET /maps/api/place/nearbysearch/json) or New (POST
// /v1/places:searchNearby), an emulator of both endpoints over one deterministic
// worldwide data set with a log of the queries it answered, and the trimming rules of
// docs/PROTOCOL.md.
package places

import (
	"fmt"
	"math"
	"sort"
)

// The data set is procedural: the globe is cut into rows of cellDeg latitude, each row into
// cells about cellDeg wide at its latitude, and each cell holds one to three places placed
// by a hash of the cell. The same query always gives the same answer, and any location has
// a place within a few kilometres, so every radius over ~3 km finds results.
const (
	cellDeg      = 0.02
	rows         = int(180 / cellDeg)
	earthRadiusM = 6371008.8
	metresPerDeg = earthRadiusM * math.Pi / 180
	pageSize     = 20 // the real API returns at most 20 results per page
)

// Place is one place of the data set.
type Place struct {
	ID       string
	Name     string
	Lat, Lng float64
	Types    []string
	Icon     string // the kind's icon name, e.g. "cafe"
	Colour   string // the icon's background colour, e.g. "#FF9E67"
	Rating   float64
	Ratings  int
	Price    int // price level 1..4; 0 when the place has none
	Vicinity string
	Open     bool
	Photo    *Photo
	// Gap puts a blank line after this place in an answer's results (emulating an upstream
	// whose JSON has blank lines, which the herd must squeeze).
	Gap bool
}

// Photo is a place's photo reference, as Nearby Search lists it.
type Photo struct {
	Ref           string
	Width, Height int
	Contributor   string // the contributor's id in the attribution link (21 digits)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// columns is the number of cells in row r, so cells are about cellDeg wide on the ground.
func columns(r int) int {
	mid := -90 + (float64(r)+0.5)*cellDeg
	n := int(360 * math.Cos(mid*math.Pi/180) / cellDeg)
	if n < 1 {
		n = 1
	}
	return n
}

var (
	adjectives = []string{"Golden", "Blue", "Quiet", "Royal", "Old", "Sunny", "Green", "Little",
		"Grand", "Hidden", "Silver", "Lucky", "Happy", "Red", "Northern", "Coastal"}
	nouns = []string{"Oak", "Lantern", "Harbor", "Garden", "Bridge", "Fox", "Mill", "Corner",
		"Willow", "Anchor", "Summit", "Meadow", "Falcon", "Orchard", "Canyon", "Bay"}
	kinds = []struct {
		suffix, icon, colour string
		types                []string
	}{
		{"Cafe", "cafe", "#FF9E67", []string{"cafe", "food", "point_of_interest", "establishment"}},
		{"Restaurant", "restaurant", "#FF9E67", []string{"restaurant", "food", "point_of_interest", "establishment"}},
		{"Hotel", "lodging", "#909CE1", []string{"lodging", "point_of_interest", "establishment"}},
		{"Books", "shopping", "#4B96F3", []string{"book_store", "store", "point_of_interest", "establishment"}},
		{"Pharmacy", "pharmacy", "#F88181", []string{"pharmacy", "health", "store", "point_of_interest", "establishment"}},
		{"Park", "park", "#4DB546", []string{"park", "tourist_attraction", "point_of_interest", "establishment"}},
		{"Bank", "bank-intl", "#7B9EB0", []string{"bank", "finance", "point_of_interest", "establishment"}},
		{"Market", "shopping", "#4B96F3", []string{"supermarket", "grocery_or_supermarket", "food", "store", "point_of_interest", "establishment"}},
	}
	streets = []string{"Main St", "Oak Ave", "Hill Rd", "Park Blvd", "Lake Dr", "Elm St",
		"Bay Rd", "Mission St", "Sunset Blvd", "Pine St", "Broadway", "Church St"}
	// Some names as real places have them: with '&', '<' and '>' (which Go's JSON encoder
	// would escape, and Google's does not in names), quotes and backslashes (escaped in
	// JSON), a '/', and letters beyond ASCII. %[1]s is the adjective, %[2]s the noun,
	// %[3]s the kind.
	oddNames = []string{
		"%[1]s %[2]s & Co. %[3]s",
		"Fish & Chips <%[2]s>",
		"I <3 %[2]s %[3]s",
		"%[2]s > %[1]s %[3]s",
		`The "%[1]s %[2]s" %[3]s`,
		`%[2]s\%[1]s %[3]s`,
		"%[1]s/%[2]s %[3]s",
		"Café %[2]s – %[1]s Straße %[3]s",
	}
)

// name is a place's name from the bits of its hash.
func name(x, y uint64, suffix string) string {
	adj, noun := adjectives[(x>>8)%16], nouns[(x>>12)%16]
	if y%5 == 0 {
		return fmt.Sprintf(oddNames[(y>>3)%uint64(len(oddNames))], adj, noun, suffix)
	}
	return fmt.Sprintf("%s %s %s", adj, noun, suffix)
}

// photoRef is an opaque photo reference in the style of the API's.
func photoRef(y uint64) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := []byte("AcJnMuE")
	for i := range 40 {
		y = splitmix(y + uint64(i))
		b = append(b, alphabet[y%64])
	}
	return string(b)
}

// cellPlaces are the places of cell (r, c).
func cellPlaces(r, c int) []Place {
	h := splitmix(uint64(r)<<32 | uint64(c))
	n := 1 + int(h%3)
	cols := columns(r)
	width := 360 / float64(cols)
	lat0 := -90 + float64(r)*cellDeg
	lng0 := -180 + float64(c)*width
	out := make([]Place, 0, n)
	for k := range n {
		x := splitmix(h + uint64(k)*0x632be59bd9b4e019)
		fa := float64(x&0xffffff) / (1 << 24)
		fb := float64((x>>24)&0xffffff) / (1 << 24)
		kind := kinds[(x>>48)%uint64(len(kinds))]
		y := splitmix(x ^ 0x5ca1ab1e)
		lat := math.Round((lat0+fa*cellDeg)*1e7) / 1e7
		lng := math.Round((lng0+fb*width)*1e7) / 1e7
		p := Place{
			ID:       fmt.Sprintf("EmU%04d%05d%d", r, c, k),
			Name:     name(x, y, kind.suffix),
			Lat:      lat,
			Lng:      lng,
			Types:    kind.types,
			Icon:     kind.icon,
			Colour:   kind.colour,
			Rating:   float64(10+(x>>20)%41) / 10,
			Ratings:  int((x >> 28) % 5000),
			Vicinity: fmt.Sprintf("%d %s", 1+(x>>36)%9999, streets[(x>>44)%uint64(len(streets))]),
			Open:     (x>>56)%10 != 0,
			Gap:      (y>>16)%7 == 0,
		}
		if (y>>20)%4 == 0 {
			p.Price = 1 + int((y>>22)%4)
		}
		if (y>>24)%8 == 0 { // an intersection
			p.Vicinity = fmt.Sprintf("%s & %s", streets[(x>>44)%uint64(len(streets))], streets[(y>>27)%uint64(len(streets))])
		}
		if (y>>31)%3 != 0 {
			p.Photo = &Photo{Ref: photoRef(y), Width: 1000 + int((y>>33)%3000), Height: 800 + int((y>>45)%2400),
				Contributor: fmt.Sprintf("1%020d", splitmix(y))}
		}
		out = append(out, p)
	}
	return out
}

// distance is the great-circle distance in metres.
func distance(lat1, lng1, lat2, lng2 float64) float64 {
	const rad = math.Pi / 180
	dlat := (lat2 - lat1) * rad
	dlng := (lng2 - lng1) * rad
	a := math.Sin(dlat/2)*math.Sin(dlat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlng/2)*math.Sin(dlng/2)
	return 2 * earthRadiusM * math.Asin(math.Min(1, math.Sqrt(a)))
}

type hit struct {
	p Place
	d float64
}

// Nearby returns the places within radius metres of (lat, lng), nearest first (ties by
// id), and how many there were in all.
func Nearby(lat, lng, radius float64) ([]Place, int) {
	all := nearbyAll(lat, lng, radius)
	return all[:min(len(all), pageSize):min(len(all), pageSize)], len(all)
}

// nearbyAll is every place within radius metres of (lat, lng), nearest first (ties by id).
func nearbyAll(lat, lng, radius float64) []Place {
	dlat := radius / metresPerDeg
	rLo := int(math.Floor((lat - dlat + 90) / cellDeg))
	rHi := int(math.Floor((lat + dlat + 90) / cellDeg))
	rLo = max(rLo, 0)
	rHi = min(rHi, rows-1)
	var hits []hit
	for r := rLo; r <= rHi; r++ {
		cols := columns(r)
		width := 360 / float64(cols)
		// The widest longitude span this row needs is at its edge nearest a pole.
		edge := math.Max(math.Abs(-90+float64(r)*cellDeg), math.Abs(-90+float64(r+1)*cellDeg))
		cosEdge := math.Cos(math.Min(edge, 90) * math.Pi / 180)
		var cLo, cHi int
		if cosEdge < 1e-9 || dlat/cosEdge >= 180 {
			cLo, cHi = 0, cols-1
		} else {
			dlng := dlat / cosEdge
			cLo = int(math.Floor((lng - dlng + 180) / width))
			cHi = int(math.Floor((lng + dlng + 180) / width))
			if cHi-cLo+1 >= cols {
				cLo, cHi = 0, cols-1
			}
		}
		for c := cLo; c <= cHi; c++ {
			cc := ((c % cols) + cols) % cols
			for _, p := range cellPlaces(r, cc) {
				if d := distance(lat, lng, p.Lat, p.Lng); d <= radius {
					hits = append(hits, hit{p, d})
				}
			}
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].d != hits[j].d {
			return hits[i].d < hits[j].d
		}
		return hits[i].p.ID < hits[j].p.ID
	})
	out := make([]Place, len(hits))
	for i, h := range hits {
		out[i] = h.p
	}
	return out
}
