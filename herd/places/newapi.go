package places

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The Places API (New) Nearby Search, emulated from the same data set as the legacy one:
// POST NewPath with the key in X-Goog-Api-Key, the field mask in X-Goog-FieldMask and a
// JSON body
//
//	{"maxResultCount": N, "locationRestriction": {"circle": {"center":
//	    {"latitude": LAT, "longitude": LNG}, "radius": METRES}}, "includedTypes": [...]}
//
// The answer is {"places": [...]} with at most maxResultCount places (1..20, default 20),
// in the legacy answer's order for the same circle (nearest first), each place with the
// fields the mask selects; {} when nothing is found, as Google answers. Errors are
// Google's {"error": {"code", "message", "status"}} with its HTTP status. The layout is
// the New API's: `"key": value`, two spaces of indentation, every array one element a
// line, '<' and '>' in strings as \u003c and \u003e ('&', '/', '=' and UTF-8 as they
// are), doubles as C's %.15g, or %.17g when that does not round-trip. Unlike Google, and
// as the legacy emulator does, some answers have blank lines between places (the same
// places as in the legacy answers), so that a herd's newline squeezing is exercised.
//
// What is not Google's: the data set's places have no phone, website, opening periods or
// reviews, so those fields are never in an answer (a mask may still name them);
// includedTypes, excludedTypes, includedPrimaryTypes and excludedPrimaryTypes filter on
// the data set's types and accept any type name (Google refuses unknown ones);
// rankPreference is accepted but the order is always by distance; languageCode and
// regionCode are accepted and ignored. The error messages are modelled on Google's, not
// copied from it.

// NewPath is the Places API (New) Nearby Search endpoint.
const NewPath = "/v1/places:searchNearby"

// GoogleNewBase is the real Places API (New) host; the endpoint is GoogleNewBase+NewPath.
const GoogleNewBase = "https://places.googleapis.com"

// DefaultFieldMask is the field mask the herd's client sends: every field. With Google
// this bills the request at the dearest Nearby Search SKU (HTTP.FieldMask narrows it).
const DefaultFieldMask = "*"

// newStyle is the New API's layout.
var newStyle = gStyle{indent: "  ", colon: ": ", escapeAngles: true, double: googleDouble}

// googleDouble formats a double as Google's JSON does (C's %.15g, or %.17g when %.15g
// does not read back as the same double).
func googleDouble(f float64) string {
	s := strconv.FormatFloat(f, 'g', 15, 64)
	if v, err := strconv.ParseFloat(s, 64); err != nil || v != f {
		s = strconv.FormatFloat(f, 'g', 17, 64)
	}
	return s
}

// Statuses of the New API's errors (google.rpc.Code names) and their HTTP statuses.
const (
	StatusInvalidArgument   = "INVALID_ARGUMENT"
	StatusPermissionDenied  = "PERMISSION_DENIED"
	StatusResourceExhausted = "RESOURCE_EXHAUSTED"
	StatusInternal          = "INTERNAL"
	StatusUnknown           = "UNKNOWN"
	StatusUnavailable       = "UNAVAILABLE"
	StatusDeadlineExceeded  = "DEADLINE_EXCEEDED"
)

// rpcHTTP is the HTTP status Google answers each google.rpc.Code with.
var rpcHTTP = map[string]int{
	"CANCELLED": 499, StatusUnknown: 500, StatusInvalidArgument: 400, StatusDeadlineExceeded: 504,
	"NOT_FOUND": 404, "ALREADY_EXISTS": 409, StatusPermissionDenied: 403, "UNAUTHENTICATED": 401,
	StatusResourceExhausted: 429, "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400,
	"UNIMPLEMENTED": 501, StatusInternal: 500, StatusUnavailable: 503, "DATA_LOSS": 500,
}

// newErrorAnswer is an error answer as the New API formats it.
func newErrorAnswer(code int, status, message string) []byte {
	return write(gObject{{"error", gObject{{"code", code}, {"message", message}, {"status", status}}}}, newStyle)
}

// newErrorResponse is the shape of ErrorJSONNew's answers.
type newErrorResponse struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

// ErrorJSONNew is an error in the New API's shape for a failure of ours or of the upstream
// (the herd's own answer when the upstream fails). Like ErrorJSON it is written by Go's
// encoder (two spaces, no HTML escaping), not as the emulator writes.
func ErrorJSONNew(code int, status, message string) []byte {
	var r newErrorResponse
	r.Error.Code, r.Error.Message, r.Error.Status = code, message, status
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		panic(err) // only strings and an int: cannot fail
	}
	return buf.Bytes()
}

// forcedNew is the New API's answer when the control endpoint forces status (other than
// HTTP500): the legacy statuses are mapped to the New API's (REQUEST_DENIED is 403
// PERMISSION_DENIED, OVER_QUERY_LIMIT 429 RESOURCE_EXHAUSTED, INVALID_REQUEST 400
// INVALID_ARGUMENT, UNKNOWN_ERROR 500 INTERNAL, ZERO_RESULTS an empty answer), a
// google.rpc.Code name gets its own HTTP status, anything else is a 500 with that status.
func forcedNew(status string) (int, []byte) {
	const msg = "forced by the emulator's control endpoint"
	switch status {
	case StatusZeroResults:
		return http.StatusOK, write(gObject{}, newStyle)
	case StatusRequestDenied:
		status = StatusPermissionDenied
	case StatusOverQueryLimit:
		status = StatusResourceExhausted
	case StatusInvalidRequest:
		status = StatusInvalidArgument
	case StatusUnknownError:
		status = StatusInternal
	}
	code, ok := rpcHTTP[status]
	if !ok {
		code = http.StatusInternalServerError
	}
	return code, newErrorAnswer(code, status, msg)
}

// ---- Field masks ----

// field is a field of the answer that a field mask may name: sub lists the subfields of
// a message the emulator models; open accepts any subpath (a message it does not model);
// neither is a scalar.
type field struct {
	sub  map[string]*field
	open bool
}

var (
	leaf     = &field{}
	anything = &field{open: true}
	latLng   = &field{sub: map[string]*field{"latitude": leaf, "longitude": leaf}}
	localTxt = &field{sub: map[string]*field{"text": leaf, "languageCode": leaf}}
)

// placeFields are Place's fields: those the emulator writes, and the rest of the New
// API's, which a mask may name though the data set has none of them.
var placeFields = func() map[string]*field {
	m := map[string]*field{
		"name": leaf, "id": leaf, "types": leaf, "formattedAddress": leaf, "location": latLng,
		"viewport": {sub: map[string]*field{"low": latLng, "high": latLng}},
		"rating":   leaf, "googleMapsUri": leaf, "businessStatus": leaf, "priceLevel": leaf,
		"userRatingCount": leaf, "iconMaskBaseUri": leaf, "iconBackgroundColor": leaf,
		"displayName": localTxt, "primaryTypeDisplayName": localTxt, "currentOpeningHours": {sub: map[string]*field{"openNow": leaf, "periods": anything,
			"weekdayDescriptions": leaf, "secondaryHoursType": leaf, "specialDays": anything,
			"nextOpenTime": leaf, "nextCloseTime": leaf}},
		"primaryType": leaf, "shortFormattedAddress": leaf,
		"photos": {sub: map[string]*field{"name": leaf, "widthPx": leaf, "heightPx": leaf,
			"authorAttributions": {sub: map[string]*field{"displayName": leaf, "uri": leaf, "photoUri": leaf}},
			"flagContentUri":     leaf, "googleMapsUri": leaf}},
	}
	for _, f := range strings.Fields(`accessibilityOptions addressComponents addressDescriptor
		adrFormatAddress allowsDogs areaSummary attributions containingPlaces curbsidePickup
		currentSecondaryOpeningHours delivery dineIn editorialSummary evChargeAmenitySummary
		evChargeOptions fuelOptions generativeSummary goodForChildren goodForGroups
		goodForWatchingSports googleMapsLinks internationalPhoneNumber liveMusic menuForChildren
		nationalPhoneNumber neighborhoodSummary outdoorSeating parkingOptions paymentOptions
		plusCode postalAddress priceRange pureServiceAreaBusiness regularOpeningHours
		regularSecondaryOpeningHours reservable restroom reviewSummary reviews servesBeer
		servesBreakfast servesBrunch servesCocktails servesCoffee servesDessert servesDinner
		servesLunch servesVegetarianFood servesWine subDestinations takeout timeZone
		utcOffsetMinutes websiteUri`) {
		m[f] = anything
	}
	return m
}()

// responseFields are SearchNearbyResponse's fields.
var responseFields = &field{sub: map[string]*field{"places": {sub: placeFields}, "routingSummaries": anything}}

// mask is a parsed field mask: all selects everything below; otherwise children selects
// some fields.
type mask struct {
	all      bool
	children map[string]*mask
}

// camel turns a proto field name (display_name) into its JSON name (displayName), as
// Google accepts either in a mask.
func camel(s string) string {
	if !strings.Contains(s, "_") {
		return s
	}
	var b strings.Builder
	up := false
	for _, r := range s {
		switch {
		case r == '_':
			up = true
		case up:
			b.WriteString(strings.ToUpper(string(r)))
			up = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// fieldMaskRequired is Google's message when a request has no field mask.
const fieldMaskRequired = "FieldMask is a required parameter. See https://cloud.google.com/apis/docs/system-parameters on how to provide it. As an example, you can set the header 'X-Goog-FieldMask' to value 'places.displayName', 'places.id' to ask for the display name and the place id of a place. You can also set the value to '*' in manual testing to get all the available response fields."

// parseMask parses a comma-separated field mask ("places.displayName,places.location",
// or "*"). It reports false with nothing wrong when there are no paths at all (no mask),
// and an error message for a path that names no field.
func parseMask(s string) (*mask, bool, string) {
	root := &mask{}
	given := false
	for _, path := range strings.Split(s, ",") {
		path = strings.TrimSpace(path)
		if path == "" {
			continue
		}
		given = true
		f, m := responseFields, root
		for _, seg := range strings.Split(path, ".") {
			if f.open {
				break // below a message the emulator does not model: select it whole
			}
			seg = camel(seg)
			if seg == "*" && f.sub != nil {
				break // every field at this level
			}
			next, ok := f.sub[seg]
			if !ok {
				return nil, true, fmt.Sprintf("Error expanding 'fields' parameter. Cannot find matching fields for path '%s'.", path)
			}
			if m.children == nil {
				m.children = map[string]*mask{}
			}
			c := m.children[seg]
			if c == nil {
				c = &mask{}
				m.children[seg] = c
			}
			f, m = next, c
		}
		m.all = true
	}
	return root, given, ""
}

// apply keeps what m selects of v.
func (m *mask) apply(v any) any {
	if m == nil || m.all {
		return v
	}
	switch v := v.(type) {
	case gObject:
		out := gObject{}
		for _, mem := range v {
			if c, ok := m.children[mem.key]; ok {
				out = append(out, gMember{mem.key, c.apply(mem.val)})
			}
		}
		return out
	case gArray:
		items := make([]any, len(v.items))
		for i, it := range v.items {
			items[i] = m.apply(it)
		}
		return gArray{items: items, inline: v.inline, gaps: v.gaps}
	}
	return v
}

// ---- Places ----

// priceLevels are the New API's names of price levels 1..4.
var priceLevels = [...]string{"", "PRICE_LEVEL_INEXPENSIVE", "PRICE_LEVEL_MODERATE", "PRICE_LEVEL_EXPENSIVE", "PRICE_LEVEL_VERY_EXPENSIVE"}

// typeName is a type's display name: "book_store" is "Book Store".
func typeName(t string) string {
	words := strings.Split(t, "_")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}

// cid is the place's Maps customer id, a number derived from its id.
func cid(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return splitmix(h.Sum64())
}

func latLngNew(lat, lng float64) gObject {
	return gObject{{"latitude", lat}, {"longitude", lng}}
}

// placeObject is a place as the New API writes it, its fields in the API's order (that
// of the Place message's field numbers).
func placeObject(p Place) gObject {
	const half = 0.0013
	round := func(v float64) float64 { return math.Round(v*1e7) / 1e7 }
	types := make([]any, len(p.Types))
	for i, t := range p.Types {
		types[i] = t
	}
	o := gObject{
		{"name", "places/" + p.ID},
		{"id", p.ID},
		{"types", gArray{items: types}},
		{"formattedAddress", p.Vicinity},
		{"location", latLngNew(p.Lat, p.Lng)},
		{"viewport", gObject{
			{"low", latLngNew(round(p.Lat-half), round(p.Lng-half))},
			{"high", latLngNew(round(p.Lat+half), round(p.Lng+half))},
		}},
		{"rating", p.Rating},
		{"googleMapsUri", "https://maps.google.com/?cid=" + strconv.FormatUint(cid(p.ID), 10)},
		{"businessStatus", "OPERATIONAL"},
	}
	if p.Price > 0 {
		o = append(o, gMember{"priceLevel", priceLevels[p.Price]})
	}
	o = append(o,
		gMember{"userRatingCount", p.Ratings},
		gMember{"iconMaskBaseUri", "https://maps.gstatic.com/mapfiles/place_api/icons/v2/" + p.Icon + "_pinlet"},
		gMember{"iconBackgroundColor", p.Colour},
		gMember{"displayName", gObject{{"text", p.Name}, {"languageCode", "en"}}},
		gMember{"primaryTypeDisplayName", gObject{{"text", typeName(p.Types[0])}, {"languageCode", "en-US"}}},
	)
	if p.Open {
		o = append(o, gMember{"currentOpeningHours", gObject{{"openNow", true}}})
	}
	o = append(o,
		gMember{"primaryType", p.Types[0]},
		gMember{"shortFormattedAddress", p.Vicinity},
	)
	if p.Photo != nil {
		key := p.Photo.Ref[7:27]
		o = append(o, gMember{"photos", gArray{items: []any{gObject{
			{"name", "places/" + p.ID + "/photos/" + p.Photo.Ref},
			{"widthPx", p.Photo.Width},
			{"heightPx", p.Photo.Height},
			{"authorAttributions", gArray{items: []any{gObject{
				{"displayName", "A Google User"},
				{"uri", "https://maps.google.com/maps/contrib/" + p.Photo.Contributor},
				{"photoUri", "https://lh3.googleusercontent.com/a-/" + p.Photo.Ref[7:] + "=s100-p-k-no-mo"},
			}}}},
			{"flagContentUri", "https://www.google.com/local/imagery/report/?cb_client=maps_api_places.places_api&image_key=!1e10!2s" + key + "&hl=en-US"},
			{"googleMapsUri", "https://www.google.com/maps/place//data=!3m4!1e2!3m2!1s" + key + "!2e10!4m2!3m1!1s0x0:0x" + strconv.FormatUint(cid(p.ID), 16)},
		}}}})
	}
	return o
}

// ---- Requests ----

// NewRequest is a parsed Nearby Search (New) request body.
type NewRequest struct {
	MaxResultCount                                                           int // as sent; 0 when absent (the API's default, 20)
	Lat, Lng                                                                 float64
	Radius                                                                   float64 // metres
	IncludedTypes, ExcludedTypes, IncludedPrimaryTypes, ExcludedPrimaryTypes []string
}

// NewRequestBody is the body of the herd's Nearby Search (New) request: the circle of
// radiusMetres (a decimal) around location ("lat,lng", decimal degrees) and at most
// maxResults places. The numbers are written as given when they are JSON numbers.
func NewRequestBody(location, radiusMetres string, maxResults int) []byte {
	lat, lng, _ := strings.Cut(location, ",")
	return fmt.Appendf(nil, `{"maxResultCount":%d,"locationRestriction":{"circle":{"center":{"latitude":%s,"longitude":%s},"radius":%s}}}`,
		maxResults, jsonNumber(lat), jsonNumber(lng), jsonNumber(radiusMetres))
}

// jsonNumber is s as a JSON number: itself when it is one ("34.068930"), else the value
// it parses to ("+05.5" is 5.5), else 0.
func jsonNumber(s string) string {
	s = strings.TrimSpace(s)
	var n json.Number
	if json.Unmarshal([]byte(s), &n) == nil && s != "" && s[0] != '"' {
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "0"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// invalidPayload is Google's prefix for a body it cannot take.
const invalidPayload = "Invalid JSON payload received. "

// members decodes a JSON object's members, naming unknown ones as Google does (at is the
// object's path, "" for the body).
func members(raw json.RawMessage, at string, known ...string) (map[string]json.RawMessage, string) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		where := ""
		if at != "" {
			where = fmt.Sprintf(" at '%s'", at)
		}
		return nil, invalidPayload + "Expected an object" + where + "."
	}
	out := map[string]json.RawMessage{}
	for k, v := range m {
		name := camel(k)
		if !slices.Contains(known, name) {
			where := ""
			if at != "" {
				where = fmt.Sprintf(" at '%s'", at)
			}
			return nil, fmt.Sprintf(invalidPayload+"Unknown name %q%s: Cannot find field.", k, where)
		}
		out[name] = v
	}
	return out, ""
}

// number decodes a JSON number, or a string holding one (proto JSON accepts either).
func number(raw json.RawMessage) (float64, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

func invalidValue(path, typ string, raw json.RawMessage) string {
	return fmt.Sprintf(invalidPayload+"Invalid value at '%s' (%s), %s", path, typ, raw)
}

// ParseNewRequest parses and checks a Nearby Search (New) body. On a failure it returns
// what it parsed so far and Google's message for the failure.
func ParseNewRequest(body []byte) (NewRequest, string) {
	var r NewRequest
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	top, msg := members(body, "", "maxResultCount", "locationRestriction", "includedTypes",
		"excludedTypes", "includedPrimaryTypes", "excludedPrimaryTypes", "languageCode",
		"regionCode", "rankPreference", "routingParameters")
	if msg != "" {
		return r, msg
	}
	if raw, ok := top["maxResultCount"]; ok {
		f, ok := number(raw)
		if !ok || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
			return r, invalidValue("max_result_count", "TYPE_INT32", raw)
		}
		r.MaxResultCount = int(f)
	}
	for _, l := range []struct {
		name string
		dst  *[]string
	}{{"includedTypes", &r.IncludedTypes}, {"excludedTypes", &r.ExcludedTypes},
		{"includedPrimaryTypes", &r.IncludedPrimaryTypes}, {"excludedPrimaryTypes", &r.ExcludedPrimaryTypes}} {
		if raw, ok := top[l.name]; ok {
			if err := json.Unmarshal(raw, l.dst); err != nil {
				return r, invalidValue(l.name, "TYPE_STRING", raw)
			}
		}
	}
	for _, name := range []string{"languageCode", "regionCode"} {
		if raw, ok := top[name]; ok {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return r, invalidValue(name, "TYPE_STRING", raw)
			}
		}
	}
	if raw, ok := top["rankPreference"]; ok {
		var s string
		if json.Unmarshal(raw, &s) != nil || !slices.Contains([]string{"RANK_PREFERENCE_UNSPECIFIED", "DISTANCE", "POPULARITY"}, s) {
			return r, invalidValue("rank_preference", "TYPE_ENUM", raw)
		}
	}
	raw, ok := top["locationRestriction"]
	if !ok {
		return r, "location_restriction is required."
	}
	lr, msg := members(raw, "location_restriction", "circle")
	if msg != "" {
		return r, msg
	}
	if raw, ok = lr["circle"]; !ok {
		return r, "location_restriction.circle is required."
	}
	circle, msg := members(raw, "location_restriction.circle", "center", "radius")
	if msg != "" {
		return r, msg
	}
	if raw, ok := circle["radius"]; ok {
		if r.Radius, ok = number(raw); !ok {
			return r, invalidValue("location_restriction.circle.radius", "TYPE_DOUBLE", raw)
		}
	}
	raw, ok = circle["center"]
	if !ok {
		return r, "location_restriction.circle.center is required."
	}
	center, msg := members(raw, "location_restriction.circle.center", "latitude", "longitude")
	if msg != "" {
		return r, msg
	}
	for _, c := range []struct {
		name string
		dst  *float64
	}{{"latitude", &r.Lat}, {"longitude", &r.Lng}} {
		if raw, ok := center[c.name]; ok {
			if *c.dst, ok = number(raw); !ok {
				return r, invalidValue("location_restriction.circle.center."+c.name, "TYPE_DOUBLE", raw)
			}
		}
	}
	switch {
	case r.MaxResultCount < 0 || r.MaxResultCount > pageSize:
		return r, fmt.Sprintf("max_result_count must be between 1 and %d, inclusive.", pageSize)
	case !(math.Abs(r.Lat) <= 90) || !(math.Abs(r.Lng) <= 180):
		return r, "Invalid location_restriction.circle.center: the latitude must be within [-90, 90] and the longitude within [-180, 180]."
	case !(r.Radius > 0) || r.Radius > 50000:
		return r, "Invalid location_restriction.circle.radius: it must be greater than 0 and at most 50000."
	}
	return r, ""
}

// keep reports whether a place passes the request's type filters.
func (r NewRequest) keep(p Place) bool {
	has := func(list []string) bool {
		for _, t := range p.Types {
			if slices.Contains(list, t) {
				return true
			}
		}
		return false
	}
	return (len(r.IncludedTypes) == 0 || has(r.IncludedTypes)) && !has(r.ExcludedTypes) &&
		(len(r.IncludedPrimaryTypes) == 0 || slices.Contains(r.IncludedPrimaryTypes, p.Types[0])) &&
		!slices.Contains(r.ExcludedPrimaryTypes, p.Types[0])
}

// AnswerNew is the emulator's answer to a Nearby Search (New) request: its HTTP status and
// body, exactly as the HTTP endpoint serves them, for the request body, the API key
// (X-Goog-Api-Key) and the field mask (X-Goog-FieldMask). KeyDenied is 403
// PERMISSION_DENIED, KeyOverLimit 429 RESOURCE_EXHAUSTED, a missing mask or a bad mask,
// body, radius (0 < r <= 50000), center or maxResultCount (1..20, 0 for 20) 400
// INVALID_ARGUMENT; any other key is accepted, as the legacy emulator does.
func AnswerNew(body []byte, key, fieldMask string) (status int, answer []byte) {
	status, answer, _ = answerNew(body, key, fieldMask)
	return status, answer
}

func answerNew(body []byte, key, fieldMask string) (int, []byte, NewRequest) {
	req, msg := ParseNewRequest(body)
	switch key {
	case KeyDenied:
		return http.StatusForbidden, newErrorAnswer(http.StatusForbidden, StatusPermissionDenied,
			"Requests to this API places.googleapis.com method google.maps.places.v1.Places.SearchNearby are blocked."), req
	case KeyOverLimit:
		return http.StatusTooManyRequests, newErrorAnswer(http.StatusTooManyRequests, StatusResourceExhausted,
			"Quota exceeded for quota metric 'SearchNearby requests' and limit 'SearchNearby requests per minute' of service 'places.googleapis.com'."), req
	}
	m, given, maskMsg := parseMask(fieldMask)
	switch {
	case !given:
		msg = fieldMaskRequired
	case maskMsg != "":
		msg = maskMsg
	}
	if msg != "" {
		return http.StatusBadRequest, newErrorAnswer(http.StatusBadRequest, StatusInvalidArgument, msg), req
	}
	n := req.MaxResultCount
	if n == 0 {
		n = pageSize
	}
	places := gArray{}
	for _, p := range nearbyAll(req.Lat, req.Lng, req.Radius) {
		if len(places.items) == n {
			break
		}
		if req.keep(p) {
			places.items = append(places.items, placeObject(p))
			places.gaps = append(places.gaps, p.Gap)
		}
	}
	answer := gObject{}
	if len(places.items) > 0 {
		answer = gObject{{"places", places}}
	}
	return http.StatusOK, write(m.apply(answer).(gObject), newStyle), req
}
