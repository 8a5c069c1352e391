"""PII in prompts and responses: the entity types found, whether the response leaks a value the prompt did
not hold, and redacted copies of both texts for storage.

Offline by construction: presidio's pattern recognizers (with checksums where the format has one) behind
an NLP engine that loads nothing. Names and places need an NER model and no trustworthy one ships in a
package, so the default claims nothing about them; `LLMWATCH_EVAL__NER_MODEL` (a local spaCy model dir)
adds PERSON and LOCATION.

Speed: presidio runs every recognizer on every text, although most texts cannot hold most entities. Here a
cheap necessary-condition regex per entity type picks the recognizers that run (none, for most texts); cards and
phones are read by code of this package (`cards`, `phones`) that only looks at digit runs long enough to be one.

Scan budget: a long digit-heavy text (a CSV of numbers, a dump of digit groups) holds thousands of phone-like runs,
each read against libphonenumber's metadata (~5-20 µs per character of such runs here; a 1 MB prompt of them would
stall the score agent for many seconds). The cost follows the characters of those runs, not the text's length:
prose with a few numbers is cheap at any length. So the budget is counted in run characters, in text order
(`pii_phone_scan_chars`, 32 KiB by default: well under a second), not as a cut of the text at N characters, which
would mask every number of a long but ordinary prompt. Runs that do not fit are not read, and the stored copy
masks each of them whole as `<UNSCANNED>` (a run is the only place a phone number can be, so nothing unscanned is
stored raw); every other recognizer (email, card with Luhn, SSN, IBAN...) still scans the whole text, cheap
regexes. The evaluator then reports `pii_partial`, which the stored event carries as the attribute
`llmwatch.pii_scan=partial`: detection there may have missed a phone number (or a leak).

The package, one job per module: `cards` (IIN ranges, lengths, Luhn), `phones` (phone numbers in every region's
formats, the scan budget), `recognizers` (the presidio recognizers, the prefilter that picks them, the context
rules), `detector` (PiiDetector: one text in, entities out), `leak` (a response value the prompt did not hold),
`evaluator` (the `pii` evaluator), `sinks` (`redact`, dead letters and feedback for storage), `quality`
(redaction recall on the generated evaluation set).
"""

from .evaluator import PiiEvaluator  # importing the package registers the `pii` evaluator
from .sinks import redact

__all__ = ["PiiEvaluator", "redact"]
