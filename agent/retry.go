package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Pacing is how a command tries again: the first pause, growing twice each
// time up to maxBackoff, until the command's context ends.
type Pacing struct {
	// Poll is the first pause after a failed try, and the pause between
	// looks at something that is under way (a decommission draining).
	Poll time.Duration
	Log  *Logger
}

// maxBackoff caps the pause between tries.
const maxBackoff = 30 * time.Second

// pending means the goal is on its way but not reached yet: look again
// after Poll. It is not a failure.
type pending struct{ state string }

func (p pending) Error() string { return p.state }

// permanent marks an error that trying again cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Retry runs try until it returns nil, a permanent error, or ctx ends; what
// describes the goal for the log. On failure it says what the FE last
// answered (the real cause) as well as the last error, which after an
// answer is often only a timeout.
func (p Pacing) Retry(ctx context.Context, what string, try func(context.Context) error) error {
	delay := wait.Backoff{Duration: p.Poll, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: maxBackoff}.DelayFunc()
	var answer *mysql.MySQLError
	for attempt := 1; ; attempt++ {
		err := classify(try(ctx))
		if err == nil {
			return nil
		}
		var perm permanent
		if errors.As(err, &perm) {
			return err
		}
		pause := p.Poll
		var state pending
		if !errors.As(err, &state) {
			p.Log.Printf("%s: try %d failed: %v", what, attempt, err)
			pause = delay()
		}
		errors.As(err, &answer)
		select {
		case <-ctx.Done():
			return timedOut(ctx, err, answer)
		case <-time.After(pause):
		}
	}
}

// timedOut is the error of a goal not reached in time: the last error and,
// when it is not that, what the FE last answered.
func timedOut(ctx context.Context, last error, answer *mysql.MySQLError) error {
	err := fmt.Errorf("stopped by a signal; the last try: %w", last)
	if deadline, ok := ctx.Deadline(); ok && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("the deadline (%s) passed; the last try: %w", deadline.UTC().Format(time.RFC3339), last)
	}
	var lastAnswer *mysql.MySQLError
	if answer != nil && !(errors.As(last, &lastAnswer) && lastAnswer == answer) {
		err = fmt.Errorf("%w; before that the FE answered: %v", err, answer)
	}
	return err
}

// accessDenied are the MySQL error numbers Doris refuses a user with
// (fe/fe-core/.../common/ErrorCode.java): a wrong password (1045), a missing
// privilege (1227: ALTER SYSTEM needs NODE), and their kin.
var accessDenied = map[uint16]bool{1044: true, 1045: true, 1142: true, 1222: true, 1223: true, 1224: true, 1225: true, 1227: true,
	3955: true, 5030: true, 5087: true}

// classify marks the errors trying again cannot fix as permanent:
//   - access denied: the credentials or privileges are wrong;
//   - a syntax error (1064), or an error Doris raised about the statement
//     itself. Those come as 1105 with "errCode = N, detailMessage = ..."
//     (UserException.getMessage); the ones that say "Try again" are not
//     final. An FE that is starting or cannot reach its master raises plain
//     exceptions instead ("Exception, msg: Node catalog is not ready",
//     "ForwardToMasterException, msg: ..."), which are transient, like every
//     network error.
func classify(err error) error {
	var answer *mysql.MySQLError
	if err == nil || !errors.As(err, &answer) {
		return err
	}
	rejected := answer.Number == 1105 && strings.Contains(answer.Message, "detailMessage") &&
		!strings.Contains(strings.ToLower(answer.Message), "try again")
	if accessDenied[answer.Number] || answer.Number == 1064 || rejected {
		return permanent{err}
	}
	return err
}
