package curve

import "fmt"

// z85Alphabet is the ZeroMQ Base-85 alphabet of RFC 32.
const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// z85Decoder maps a character to its value plus one; zero marks an invalid byte.
var z85Decoder = func() (d [256]byte) {
	for i := 0; i < len(z85Alphabet); i++ {
		d[z85Alphabet[i]] = byte(i + 1)
	}
	return d
}()

// Z85Encode encodes data (length a multiple of 4) as Z85 text (RFC 32).
func Z85Encode(data []byte) (string, error) {
	if len(data)%4 != 0 {
		return "", fmt.Errorf("%w: z85 encode: length %d is not a multiple of 4", ErrBadKey, len(data))
	}
	out := make([]byte, len(data)/4*5)
	for i, o := 0, 0; i < len(data); i, o = i+4, o+5 {
		v := uint32(data[i])<<24 | uint32(data[i+1])<<16 | uint32(data[i+2])<<8 | uint32(data[i+3])
		for k := 4; k >= 0; k-- {
			out[o+k] = z85Alphabet[v%85]
			v /= 85
		}
	}
	return string(out), nil
}

// Z85Decode decodes Z85 text (length a multiple of 5) into bytes (RFC 32).
func Z85Decode(s string) ([]byte, error) {
	if len(s)%5 != 0 {
		return nil, fmt.Errorf("%w: z85 decode: length %d is not a multiple of 5", ErrBadKey, len(s))
	}
	out := make([]byte, len(s)/5*4)
	for i, o := 0, 0; i < len(s); i, o = i+5, o+4 {
		var v uint64
		for k := 0; k < 5; k++ {
			d := z85Decoder[s[i+k]]
			if d == 0 {
				return nil, fmt.Errorf("%w: z85 decode: invalid character %q at %d", ErrBadKey, s[i+k], i+k)
			}
			v = v*85 + uint64(d-1)
		}
		if v > 0xFFFFFFFF {
			return nil, fmt.Errorf("%w: z85 decode: group at %d overflows 32 bits", ErrBadKey, i)
		}
		out[o], out[o+1], out[o+2], out[o+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	return out, nil
}
