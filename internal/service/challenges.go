package service

import (
	"context"
	"fmt"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/policy"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth/scram"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Challenge types.
const (
	// ChallengeScram is answered with a proof of the password that does
	// not reveal it (package scram).
	ChallengeScram = scram.Type
	// ChallengeClear is answered with the password itself, over the
	// encrypted channel.
	ChallengeClear = "clear"
)

// ChallengeTypes are the types the server offers, preferred first.
var ChallengeTypes = []string{ChallengeScram, ChallengeClear}

const (
	// ChallengeTTL is how long a challenge may be answered.
	ChallengeTTL = 2 * time.Minute
	// maxLiveChallenges bounds the challenges one uid has outstanding: a
	// new one replaces the oldest, so that asking fills no store and
	// hoarding locks nobody out.
	maxLiveChallenges = 8
	// decoySecretName names the server secret decoy salts derive from.
	decoySecretName = "challenge-decoy-salt"
)

// Challenge is what RequestChallenge hands out.
type Challenge struct {
	ID        string
	UID       string
	Type      string
	ExpiresAt time.Time
	// Scram is the server's half of a scram-argon2id exchange.
	Scram *scram.Challenge
}

// chooseChallengeType picks the first of the client's types the server
// offers.
func chooseChallengeType(types []string) (string, error) {
	if len(types) == 0 {
		return ChallengeScram, nil
	}
	for _, t := range types {
		if slices.Contains(ChallengeTypes, t) {
			return t, nil
		}
	}
	return "", domain.Invalid("types", "types.unsupported",
		"none of the challenge types asked for is offered; this server offers "+strings.Join(ChallengeTypes, ", "))
}

// RequestChallenge issues a challenge for uid, of the first of types the
// server offers. A uid without an account, or whose password predates
// challenge logins, gets a scram-argon2id challenge that looks like any other
// (a decoy: its salt is stable per uid) and that no answer satisfies.
func (s *Accounts) RequestChallenge(ctx context.Context, p *auth.Principal, uid string, types []string) (*Challenge, error) {
	if err := s.authorize(ctx, p, opAuthRequestChallenge, policy.None); err != nil {
		return nil, err
	}
	if err := s.passwordLoginAllowed(); err != nil {
		return nil, err
	}
	var vs domain.Violations
	if err := vs.Check(domain.ValidateUID("uid", uid)); err != nil {
		return nil, err
	}
	typ, err := chooseChallengeType(types)
	if err := vs.Check(err); err != nil {
		return nil, err
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	now := s.now()
	c := &Challenge{ID: newID(), UID: uid, Type: typ, ExpiresAt: now.Add(ChallengeTTL)}
	candidate := scram.Nonce(32)
	err = s.update(ctx, &record{op: opAuthRequestChallenge.Name, object: userObject(uid), detail: "type " + typ}, func(tx store.Tx) error {
		if err := s.checkBackoff(ctx, tx, uid, now); err != nil {
			return err
		}
		var data string
		if typ == ChallengeScram {
			v, err := s.storedVerifier(ctx, tx, uid)
			if err != nil {
				return err
			}
			// The secret is read whatever the account, so that both
			// paths cost the same.
			key, err := tx.Challenges().Secret(ctx, decoySecretName, candidate)
			if err != nil {
				return err
			}
			if v != nil {
				c.Scram = v.Challenge()
			} else {
				c.Scram = scram.Decoy(key, uid, s.hasher.Effective())
			}
			data = c.Scram.Encode()
		}
		if err := tx.Challenges().Create(ctx, &store.Challenge{
			ID: c.ID, UID: uid, Type: typ, Data: data, CreatedAt: now, ExpiresAt: c.ExpiresAt,
		}); err != nil {
			return err
		}
		_, err := tx.Challenges().Trim(ctx, uid, maxLiveChallenges)
		return err
	})
	if err != nil {
		s.auditBackoff(ctx, opAuthRequestChallenge.Name, uid, err)
		return nil, err
	}
	return c, nil
}

// storedVerifier returns uid's SCRAM verifier, or nil when there is no such
// account or it has none (or an unreadable one, which the next password
// login replaces).
func (s *Accounts) storedVerifier(ctx context.Context, tx store.Tx, uid string) (*scram.Verifier, error) {
	enc, err := tx.Users().ScramVerifier(ctx, uid)
	if domain.HasCode(err, domain.CodeNotFound) || enc == "" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := scram.ParseVerifier(enc)
	if err != nil {
		// The error names what is wrong, never the verifier.
		s.log.ErrorContext(ctx, "unreadable SCRAM verifier: challenge logins fail until the next password login", "uid", uid, "err", err)
		return nil, nil
	}
	return v, nil
}

// ChallengeAnswer is the client's answer to a challenge.
type ChallengeAnswer struct {
	ChallengeID string
	// UID, when set, is the account the client means: a challenge issued
	// for another is refused.
	UID string
	// Password answers a clear challenge.
	Password string
	// ClientNonce and ClientProof answer a scram-argon2id challenge.
	ClientNonce []byte
	ClientProof []byte
	// IssueClientCertificate asks for a client certificate bound to the
	// session, as Login's issueCert.
	IssueClientCertificate bool
}

// String keeps the answer's secrets out of logs should it be printed.
func (a *ChallengeAnswer) String() string {
	return fmt.Sprintf("ChallengeAnswer{challenge %s}", a.ChallengeID)
}

// ChallengeLogin is what a right answer earns.
type ChallengeLogin struct {
	Tokens *Tokens
	// ServerSignature proves to a scram-argon2id client that the server
	// holds the account's verifier.
	ServerSignature []byte
}

var challengeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// challengeRefused is an unauthenticated error naming the field and rule.
func challengeRefused(field, rule, description string) error {
	return &domain.Error{
		Code:       domain.CodeUnauthenticated,
		Message:    field + ": " + description,
		Violations: []domain.Violation{{Field: field, Rule: rule, Description: description}},
	}
}

var (
	errChallengeUsed = challengeRefused("challenge_id", "challenge_id.used",
		"this challenge was never issued or has been answered already: request a new one")
	errChallengeExpired = challengeRefused("challenge_id", "challenge_id.expired",
		fmt.Sprintf("this challenge expired (challenges are valid for %s): request a new one", ChallengeTTL))
	errChallengeOtherUID = challengeRefused("uid", "uid.mismatch",
		"this challenge was issued for another uid: request one for the uid you log in as")
)

// validate checks the answer's form, before it uses a challenge up.
func (a *ChallengeAnswer) validate() error {
	var vs domain.Violations
	switch {
	case a.ChallengeID == "":
		vs.Add("challenge_id", "challenge_id.required", "the challenge id is required")
	case !challengeIDPattern.MatchString(a.ChallengeID):
		vs.Add("challenge_id", "challenge_id.format", "not a challenge id as RequestChallenge returns them")
	}
	if a.UID != "" {
		if err := vs.Check(domain.ValidateUID("uid", a.UID)); err != nil {
			return err
		}
	}
	scramGiven := len(a.ClientNonce) > 0 || len(a.ClientProof) > 0
	switch {
	case a.Password != "" && scramGiven:
		vs.Add("password", "password.ambiguous", "answer with the password (clear) or with client_nonce and client_proof (scram-argon2id), not both")
	case a.Password == "" && !scramGiven:
		vs.Add("client_proof", "client_proof.required", "answer the challenge: client_nonce and client_proof for scram-argon2id, password for clear")
	case scramGiven:
		if n := len(a.ClientNonce); n < scram.MinClientNonceLen || n > scram.MaxClientNonceLen {
			vs.Add("client_nonce", "client_nonce.length", fmt.Sprintf("the client nonce must be %d to %d random bytes", scram.MinClientNonceLen, scram.MaxClientNonceLen))
		}
		if len(a.ClientProof) != scram.ProofLen {
			vs.Add("client_proof", "client_proof.length", fmt.Sprintf("the client proof must be %d bytes", scram.ProofLen))
		}
	}
	return vs.Err()
}

// ChallengeResponse answers a challenge; a right answer opens a session as
// Login does. The challenge is used up whatever the outcome, and every
// refusal is audited. A wrong answer and a challenge of a uid without an
// account fail alike, with errBadCredentials, and count as failed logins.
func (s *Accounts) ChallengeResponse(ctx context.Context, p *auth.Principal, a ChallengeAnswer) (*ChallengeLogin, error) {
	if err := s.authorize(ctx, p, opAuthChallengeResponse, policy.None); err != nil {
		return nil, err
	}
	if err := s.passwordLoginAllowed(); err != nil {
		return nil, err
	}
	if err := a.validate(); err != nil {
		return nil, err
	}
	now := s.now()
	// Use the challenge up, and record a refusal, in one transaction: a
	// challenge is answered once, whatever the answer.
	var c *store.Challenge
	var refusal error
	err := s.st.Update(ctx, func(tx store.Tx) error {
		c, refusal = nil, nil
		var err error
		c, err = tx.Challenges().Consume(ctx, a.ChallengeID)
		object := "challenge:" + a.ChallengeID
		detail := ""
		switch {
		case domain.HasCode(err, domain.CodeNotFound):
			refusal, detail = errChallengeUsed, "challenge unknown or already answered"
			if a.UID != "" {
				object = userObject(a.UID)
			}
		case err != nil:
			return err
		default:
			object = userObject(c.UID)
			detail, refusal = s.admissible(ctx, tx, c, &a, now)
		}
		if refusal == nil {
			return nil
		}
		if domain.CodeOf(refusal) == domain.CodeInternal {
			return refusal // the store failed: nothing is used up
		}
		return tx.Audit().Append(ctx, s.auditEvent(ctx, &record{op: opAuthChallengeResponse.Name, object: object, detail: detail}, domain.CodeOf(refusal).String()))
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	switch c.Type {
	case ChallengeClear:
		l, err := s.verifyLogin(ctx, opAuthChallengeResponse.Name, c.UID, a.Password, now)
		if err != nil {
			return nil, err
		}
		l.detail = "challenge " + ChallengeClear
		l.issueCert = a.IssueClientCertificate
		toks, err := s.finishLogin(ctx, l)
		if err != nil {
			return nil, err
		}
		return &ChallengeLogin{Tokens: toks}, nil
	case ChallengeScram:
		return s.answerScram(ctx, c, &a, now)
	}
	return nil, domain.Internal(fmt.Errorf("challenge of unknown type %q", c.Type), "challenge check failed")
}

// admissible decides whether an answer to c may be checked at all; when not,
// it returns a detail for the audit record and the refusal.
func (s *Accounts) admissible(ctx context.Context, tx store.Tx, c *store.Challenge, a *ChallengeAnswer, now time.Time) (detail string, refusal error) {
	switch {
	case !now.Before(c.ExpiresAt):
		return "challenge expired", errChallengeExpired
	case a.UID != "" && a.UID != c.UID:
		return "challenge of another uid", errChallengeOtherUID
	case c.Type == ChallengeClear && a.Password == "":
		return "answer of the wrong type", domain.Invalid("password", "password.required",
			"this challenge is of type clear: answer it with the password")
	case c.Type == ChallengeScram && a.Password != "":
		return "answer of the wrong type", domain.Invalid("client_proof", "client_proof.required",
			"this challenge is of type scram-argon2id: answer it with client_nonce and client_proof")
	}
	// The answer is counted as an attempt before it is checked (and a
	// clear one's password is not counted again).
	if err := s.reserveAttempt(ctx, tx, c.UID, now); err != nil {
		return "login back-off", err
	}
	return "", nil
}

// noVerifier stands in for an account without a verifier: checking a proof
// against it costs what a real check costs, and always fails.
var noVerifier = &scram.Verifier{StoredKey: make([]byte, 32), ServerKey: make([]byte, 32)}

func (s *Accounts) answerScram(ctx context.Context, c *store.Challenge, a *ChallengeAnswer, now time.Time) (*ChallengeLogin, error) {
	ch, err := scram.DecodeChallenge(c.Data)
	if err != nil {
		return nil, domain.Internal(err, "challenge check failed")
	}
	var u *domain.User
	var v *scram.Verifier
	if err := s.view(ctx, func(tx store.Tx) error {
		var err error
		if v, err = s.storedVerifier(ctx, tx, c.UID); err != nil || v == nil {
			return err
		}
		u, err = tx.Users().Get(ctx, c.UID)
		return err
	}); err != nil {
		return nil, err
	}
	am := scram.AuthMessage(c.UID, c.ID, ch, a.ClientNonce)
	ok := false
	if v == nil {
		noVerifier.Verify(am, a.ClientProof)
	} else {
		ok = v.Verify(am, a.ClientProof)
	}
	if !ok {
		s.auditLoginFailure(ctx, opAuthChallengeResponse.Name, c.UID)
		return nil, errBadCredentials
	}
	toks, err := s.finishLogin(ctx, &login{op: opAuthChallengeResponse.Name, user: u, at: now, detail: "challenge " + ChallengeScram, issueCert: a.IssueClientCertificate})
	if err != nil {
		return nil, err
	}
	return &ChallengeLogin{Tokens: toks, ServerSignature: v.ServerSignature(am)}, nil
}
