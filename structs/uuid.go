package structs

import (
	"crypto/rand"
	"encoding/hex"
)

// GenerateUUID returns a random version 4 UUID in its canonical text form.
func GenerateUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("structs: reading random bytes: " + err.Error())
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// ShortID is the first 8 characters of an ID, as the CLI prints it.
func ShortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
