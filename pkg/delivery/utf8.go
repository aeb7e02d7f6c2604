package delivery

import "smtp-bs/pkg/address"

// NeedsSMTPUTF8 reports whether the sender or one of the recipients rcpts
// (indices into all) is not plain ASCII.
func NeedsSMTPUTF8(from string, all []string, rcpts []int) bool {
	if !address.IsASCII(from) {
		return true
	}
	for _, r := range rcpts {
		if !address.IsASCII(all[r]) {
			return true
		}
	}
	return false
}
