package domain

import (
	"regexp"
	"time"
)

// Provider states.
const (
	ProviderActive   = "active"
	ProviderDisabled = "disabled"
)

// Provider is a site that runs resources. It proves itself with its own
// Ed25519 key, registered with a one-time token (PublicKey is nil until
// then).
type Provider struct {
	Name         string
	URL          string
	State        string // ProviderActive or ProviderDisabled
	PublicKey    []byte // 32 bytes once registered
	RegisteredAt time.Time
	CreatedAt    time.Time
}

// ProviderRegistration is a provider's one-time registration token; only
// its SHA-256 is kept.
type ProviderRegistration struct {
	TokenHash []byte
	Provider  string
	ExpiresAt time.Time
}

// ProviderTicket is a connection ticket the centre issued: the site that
// reports a connection names it, and it is used once.
type ProviderTicket struct {
	ID        string // the ticket's jti
	Provider  string
	UID       string
	ExpiresAt time.Time
	UsedAt    time.Time // zero until a site reported it
}

// ProviderConnection maps a user to a local account at a site.
type ProviderConnection struct {
	Provider     string
	UID          string
	LocalAccount string
	// UserKeyFingerprint names the key the user gave the site directly;
	// the centre never holds the key itself.
	UserKeyFingerprint string
	CreatedAt          time.Time
}

var providerPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{1,31}$`)

// ValidateProviderName checks a provider's name: uid-like, since it appears
// in audiences ("provider:NAME") and paths.
func ValidateProviderName(field, name string) error {
	switch {
	case name == "":
		return Invalid(field, field+".required", "name the provider")
	case !providerPattern.MatchString(name):
		return Invalid(field, field+".format", "a provider's name is 2 to 32 characters: lower-case letters, digits, '_' or '-', starting with a letter")
	}
	return nil
}

// LocalAccountPattern is what a local account name may look like (the
// portable login name).
var LocalAccountPattern = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
