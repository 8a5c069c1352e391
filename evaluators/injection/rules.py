"""The versioned structural rules for prompt injection (OWASP LLM01): data only, kept apart from the scorer like
YARA rules.

Each rule has a stable id, a family, a weight in (0, 1] (how much it alone suggests an attack) and the ruleset
version that last changed it. `matching` runs them (on de-obfuscated views too); the learned head
(`model`) uses which families fired as features. Change a rule → bump RULESET_VERSION and its `since`, then
retrain (`llmwatch eval train --evaluators injection`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

RULESET_VERSION = "2026.12.2"


@dataclass(frozen=True)
class Rule:
    """One structural signature: any of `patterns` matching fires it (a match `confirm` accepts, when given: for
    what one regex cannot say, such as "a tag this text never opened")."""

    id: str
    family: str
    weight: float
    description: str
    patterns: tuple[re.Pattern[str], ...]
    since: str = RULESET_VERSION
    confirm: Callable[[str, re.Match[str]], bool] | None = None

    def matches(self, text: str) -> bool:
        return any(self.fires(p, text) for p in self.patterns)

    def fires(self, pattern: re.Pattern[str], text: str) -> bool:
        """Whether `pattern` (one of this rule's) fires on `text`."""
        if self.confirm is None:
            return pattern.search(text) is not None
        return any(self.confirm(text, m) for m in pattern.finditer(text))


def _closes_unopened(text: str, m: re.Match[str]) -> bool:
    """A closing tag counts when the text never opens that tag: it ends a section the application opened around
    it (`</user_input>` inside the user's input). Templates close what they open (`<input>{input}</input>`)."""
    return re.search(rf"<\s*{re.escape(m.group(1))}\b[^>/]*>", text, re.IGNORECASE) is None


def _rx(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE | re.MULTILINE) for p in patterns)


# Shared vocabulary (kept as fragments so the families read like the attacks they catch).
_IGNORE = (
    r"(?:ignore|disregard|forget|skip|bypass|override|overlook|abandon|discard|neglect|throw out|set aside|scratch"
    r"|never\s*mind|pay\s+no\s+attention\s+to)"
)
_PRIOR = (
    r"(?:previous|prior|above|earlier|preceding|foregoing|initial|original|system|developer|all|any|every|your"
    r"|the|these|those|my|its)"
)
_INSTR = (
    r"(?:instructions?|prompts?|rules|directions?|guidelines|directives?|orders|commands?|constraints|restrictions"
    r"|programming|policies|guidance|context|conversation|training|configuration|safeguards|guardrails|filters"
    r"|alignment|safety\s+\w+|brief)"
)
_AI = (
    r"(?:(?:automated\s+|ai\s+|code\s+|coding\s+|virtual\s+|shopping\s+)?(?:assistant|agent|screener|reviewer|recruiter"
    r"|summari[sz]er|note-?taker|bot)|ai(?:\s+models?|\s+systems?)?|a\.i\.|chat\s?bot|(?:large\s+)?language\s+models?"
    r"|llm|gpt|chatgpt|claude|gemini|copilot|bing|bard|model)"
)
_SYS_PROMPT = (
    r"(?:system[\s_-]?prompt|system message|initial prompt|hidden prompt|secret prompt|pre-?prompt|meta[\s-]?prompt"
    r"|(?:full|whole|entire|complete|original|initial|hidden|secret|exact) prompt|developer (?:message|prompt)"
    r"|(?:original|initial|hidden|secret|system|first|full|exact|confidential|internal|private) (?:instructions|rules"
    r"|notes)|instructions (?:you were|you've been|you have been) given|(?:your|the) (?:configuration|rules) verbatim)"
)

_END_OF = (
    r"(?:end|close)\s+of\s+(?:the\s+)?(?:user\s+)?(?:input|prompt|document|context|text|query|email|data|message"
    r"|conversation|chat|session)"
)

RULES: tuple[Rule, ...] = (
    # --- override: "ignore previous instructions" in its many phrasings --------------------------------
    Rule(
        "LW-INJ-OVR-001",
        "override",
        0.9,
        "Orders the model to ignore/forget its prior instructions.",
        _rx(
            # not when it describes an attack ("designed to make you ignore …", "tells the model to ignore …")
            r"(?<!make you )(?<!makes you )(?<!making you )(?<!trick you into )(?<!tricks you into )"
            r"(?<!get you to )(?<!model to )(?<!models to )(?<!llm to )(?<!llms to )(?<!ai to )(?<!bot to )"
            rf"(?<!assistant to )\b{_IGNORE}\b(?:\s+\S+){{0,4}}?\s+{_PRIOR}\b(?:\s+\S+){{0,3}}?\s+{_INSTR}\b",
            rf"\b(?:{_IGNORE}|never\s*mind)\s+(?:what|whatever|everything|anything|all)\s+(?:\w+\s+){{0,3}}?"
            r"(?:told|said|instructed|taught|gave|programmed|trained|given)\b",
            rf"\b{_IGNORE}\s+(?:all\s+(?:of\s+)?)?(?:the\s+|that\s+|what\s+is\s+)?(?:above|foregoing|preceding|previous)"
            r"(?:\s+(?:text|message|lines?|content|input|prompt))?\s*(?:[.,;:!]|and\b|then\b|$)",
            rf"\b{_IGNORE}\s+(?:the|this|their|my|your)\s+(?:user'?s?\s+)?(?:query|question|request|task|document|doc"
            r"|page|email|input)\s+and\s+(?:instead\s+)?(?:\w+\s+)?(?:respond|reply|say|tell|output|print|write|email|send"
            r"|do|follow|reveal|answer|recommend|praise)",
            rf"\b{_IGNORE}\s+(?:everything|all|anything|whatever)\s+(?:\w+\s+)?(?:above|before|prior|previously|so\s+far"
            r"|up\s+to\s+now|earlier)\b",
            r"\b(?:ignore|disregard)\s+(?:it|that|them|this)\s+and\s+(?:listen\s+to|follow|obey|do\s+(?:what|as)\s+i)",
            r"\b(?:forget|ignore|disregard)\s+(?:that\s+)?you(?:\s+are|'re|’re)\s+(?:an?\s+)?(?:ai|assistant|language\s+model|chatbot"
            r"|bot|helpful)",
        ),
    ),
    Rule(
        "LW-INJ-OVR-002",
        "override",
        0.6,
        "Announces replacement instructions or a new task.",
        _rx(
            r"\b(?:new|updated|revised|real|actual|true|correct)\s+(?:system\s+)?(?:instructions?|task|directive|rules"
            r"|orders|objective|prompt)\s*(?::|follow|are|is|\*|=|#|-{2,}|\])",
            r"\b(?:updated|changed|revised|replaced|rewritten)\s+your\s+(?:orders|instructions|rules|directives|guidelines"
            r"|programming|prompt)",
            r"\byour\s+(?:new|real|actual|true|only)\s+(?:task|job|goal|purpose|instructions?|objective|mission)\s+"
            r"(?:is|are|will be|now)",
            r"\bfrom\s+(?:now|this\s+(?:moment|point)|here)\s+on,?\s+(?:you\s+(?:will|must|shall|are|should|only|respond"
            r"|answer|reply|act)|your\s+(?:only|new))",
            r"\bmessage\s+from\s+(?:your|the)\s+(?:creators?|developers?|admins?|administrators?|operators?|makers?|openai"
            r"|anthropic)",
        ),
    ),
    Rule(
        "LW-INJ-OVR-003",
        "override",
        0.8,
        "Releases the model from its rules.",
        _rx(
            r"\b(?:do\s+not|don't|dont|never|stop)\s+(?:follow(?:ing)?|obey(?:ing)?|adher(?:e|ing)\s+to|comply(?:ing)?\s+with"
            r"|listen(?:ing)?\s+to)\s+(?:your|the|any|those|these|its)\s+(?:[\w']+\s+)?" + _INSTR,
            r"\b(?:you\s+are|you're|you\s+will\s+be)\s+(?:no\s+longer|not)\s+(?:bound|restricted|limited|constrained"
            r"|required)\b",
            r"\bno\s+longer\s+(?:have|need)\s+to\s+(?:follow|obey|comply|adhere)",
            r"\b(?:rules|instructions|restrictions|guidelines|policies)\s+(?:no\s+longer|do\s+not|don't)\s+apply",
            r"\b(?:your|its|the)\s+(?:\w+\s+)?(?:guidelines|rules|guardrails|restrictions|filters|instructions|safety"
            r"|content\s+policy|policies|training|alignment)\s+(?:did\s+not|didn't|do\s+not|don't|does\s+not|doesn't"
            r"|no\s+longer)\s+(?:exist|apply|matter|count)",
            r"\b(?:your|its|the)\s+(?:\w+\s+)?(?:guidelines|rules|guardrails|restrictions|filters|instructions|safety\s+\w+"
            r"|content\s+policy|policies|alignment)\s+(?:were|was|have\s+been|had\s+been|are|got)\s+(?:\w+\s+)?(?:deleted"
            r"|removed|disabled|lifted|turned\s+off|switched\s+off|gone|void|suspended|revoked|erased)",
            r"\b(?:disable|turn\s+off|switch\s+off|deactivate|remove|lift|suspend|bypass|circumvent)\s+(?:your|the|all|its"
            r"|any)\s+(?:\w+\s+)?(?:filters?|restrictions|safety(?:\s+\w+)?|guardrails|safeguards|content\s+polic\w+"
            r"|moderation|censorship|alignment|rules|limits|limitations)\b",
        ),
    ),
    Rule(
        "LW-INJ-OVR-004",
        "override",
        0.6,
        "Declares the earlier conversation void (a test, a mistake, over).",
        _rx(
            r"\b(?:the\s+)?(?:above|previous|prior|preceding|earlier)\s+(?:\w+\s+)?(?:was|were|is|are)\s+(?:just\s+)?"
            r"(?:a\s+test|fake|wrong|a\s+mistake|void|cancell?ed|outdated|obsolete|only\s+an?\s+example)",
            r"\b(?:everything|all|the\s+text|anything)\s+(?:before|above)\s+(?:this|here)?\s*(?:was|were|is)\s+(?:just\s+|only\s+)?"
            r"(?:a\s+test|an?\s+example|fake|a\s+joke|irrelevant|void|written\s+by)",
            r"\b(?:your|the)\s+(?:old|previous|prior|original|earlier|current)\s+(?:instructions|rules|orders|guidelines"
            r"|directives|prompt)\s+(?:have\s+)?(?:expired|ended|lapsed|changed|been\s+replaced|are\s+(?:void|invalid"
            r"|outdated|cancell?ed))",
            r"\bnothing\s+(?:you\s+(?:were|have\s+been)\s+(?:told|given|instructed)|(?:in\s+)?your\s+(?:instructions|prompt"
            r"|rules))\b.{0,40}\b(?:matters|applies|counts|is\s+valid)",
            r"\b(?:end|stop)\s+of\s+(?:the\s+)?(?:test|simulation|previous\s+task)\b.{0,40}\b(?:now|new)\b",
            r"\b(?:reset|clear|wipe|erase|delete|purge|flush)\s+(?:your|all)\s+(?:\w+\s+)?(?:instructions|memory|context|rules|programming)",
        ),
    ),
    Rule(
        "LW-INJ-OVR-005",
        "override",
        0.9,
        "'Ignore previous instructions' in other languages.",
        _rx(
            r"\b(?:ignora|ignorez|ignoriere|ignorieren|ignorare|ignorar|ignoreer)\b.{0,30}\b(?:instrucciones|instructions"
            r"|anweisungen|istruzioni|instruções|instrucoes|consignes|regeln|reglas|règles|instructies)\b",
            r"\bignore\b.{0,30}\b(?:instrucciones|reglas|anweisungen|istruzioni|instruções|consignes|règles)\b",
            r"\b(?:olvida|vergiss|oublie|oubliez|dimentica|esqueça)\b.{0,30}\b(?:instrucciones|anweisungen|instructions"
            r"|istruzioni|instruções|consignes|todo|alles|tout|tutto|regeln|reglas|règles|regole)\b",
            r"忽略.{0,10}(?:指令|指示|说明|规则)",
            r"(?:игнорируй|забудь).{0,30}(?:инструкции|указания|правила)",
        ),
    ),
    Rule(
        "LW-INJ-OVR-006",
        "override",
        0.5,
        "Forces a verbatim output or an affirmative prefix (prefix injection).",
        _rx(
            r"\b(?:say|respond|reply|answer|output|print|write)\s+(?:with\s+)?(?:exactly|only|just)?\s*[\"“'‘`][^\"”'’`]{1,80}"
            r"[\"”'’`]\s*(?:and\s+nothing\s+else|,?\s*(?:regardless|no\s+matter|whatever|and\s+only|only))",
            r"\b(?:begin|start|open)\s+(?:your\s+)?(?:reply|response|answer)\s+with\s+[\"“'‘`](?:sure|absolutely|of\s+course"
            r"|certainly|yes|okay|ok|here\s+is|here's)",
        ),
    ),
    # --- role switch: chat-template markers, fake role labels, claimed authority ------------------------
    Rule(
        "LW-INJ-ROLE-001",
        "role_switch",
        0.8,
        "Chat-template control tokens inside user text.",
        _rx(
            r"<\|(?:im_start|im_end|system|user|assistant|endoftext|begin_of_text|start_header_id|eot_id)\|>",
            r"\[/?INST\]|<</?SYS>>|<start_of_turn>|<end_of_turn>",
        ),
    ),
    Rule(
        "LW-INJ-ROLE-002",
        "role_switch",
        0.45,
        "A line or tag posing as a system/developer/admin message.",
        (
            *_rx(
                r"^\s*(?:\[|<|\{|#{1,4}\s*|\*\*)?\s*(?:system|developer|admin(?:istrator)?|root|sudo|operator|instruction)"
                r"(?:\s+(?:message|prompt|override|note|notice|instruction|update|command))?\s*(?:\]|>|\}|\*\*)?\s*:",
                r"\[(?:system|admin|developer)\s*(?:message|override|note|instruction)?\]",
                r"\"role\"\s*:\s*\"(?:system|developer)\"",
                r"#{2,4}\s*(?:instruction|response|system)\s*:",
            ),
            re.compile(r"(?:[.!?]\s+|\]\s*)(?:SYSTEM|ADMIN|DEVELOPER)\s*:"),  # case-sensitive: mid-text shouting
        ),
    ),
    Rule(
        "LW-INJ-ROLE-003",
        "role_switch",
        0.5,
        "Reassigns the model's identity ('you are now…', 'act as an unrestricted…').",
        _rx(
            r"\byou\s+are\s+now\s+(?:a|an|the|my|in|called|named|going|free|no|[A-Z]{2,})\b",
            r"\bfrom\s+(?:now|this\s+(?:moment|point))\s+on,?\s+you\s+(?:are|will\s+(?:be|act|behave|respond|play)|act"
            r"|play)\b",
            r"\b(?:act|behave|respond|pretend|roleplay)\s+(?:as|like)\s+(?:if\s+you\s+(?:were|are)\s+)?(?:an?\s+)?"
            r"(?:unrestricted|unfiltered|uncensored|evil|jailbroken|rogue|amoral|unethical|unlimited)",
            r"\bstop\s+being\s+(?:an?\s+)?(?:helpful|harmless|honest|safe|ethical|polite|assistant|good\s+ai)\b",
            r"\b(?:act|behave|respond|answer)\s+(?:as|like)\s+an?\s+(?:ai|assistant|model|chatbot)\s+(?:that|which|who)\s+"
            r"(?:was\s+never|has\s+(?:no|never)|is\s+not|isn't|doesn't|does\s+not|never|ignores|believes)",
        ),
    ),
    Rule(
        "LW-INJ-ROLE-004",
        "role_switch",
        0.85,
        "Switches the model into a privileged 'mode'.",
        _rx(
            r"\b(?:enable|enter|activate|switch\s+(?:to|into)|turn\s+on|unlock|engage|boot\s+into|now\s+in)\s+"
            r"(?:\w+\s+)?(?:developer|dev|god|debug|admin|sudo|root|jailbreak|unrestricted|dan|maintenance|unlocked"
            r"|evil|opposite)\s+mode(?!\s+(?:in|on|for)\s+(?:my\s+|the\s+|your\s+|a\s+)?(?:windows|android|chrome|ios|iphone"
            r"|ipad|phone|pixel|samsung|mac|macos|browser|device|laptop|pc|computer|tv|console|xbox|playstation|router|car"
            r"|linux|ubuntu|app)\b)",
            r"\b(?:developer|god|jailbreak|dan|unrestricted)\s+mode\s+(?:enabled|activated|engaged)",
        ),
    ),
    Rule(
        "LW-INJ-ROLE-005",
        "role_switch",
        0.55,
        "Claims authority over the model (developer, admin, provider staff) to unlock it.",
        _rx(
            r"\b(?:i\s+am|i'm|this\s+is|we\s+are)\s+(?:your|the|an?|from\s+the)?\s*(?:system\s+|lead\s+|head\s+)?"
            r"(?:developers?|creators?|administrators?|admins?|operators?|owners?|openai|anthropic|security\s+team"
            r"|red[\s-]?team\w*|engineers?|makers?)\b(?=.{0,160}\b(?:disable|turn\s+off|override|ignore|bypass|unlock"
            r"|comply|restrictions|filters|safety|grant|authori[sz]ation|auth(?:entication)?\s+(?:code|token)|verified"
            r"|cleared|trusted))",
            r"\b(?:authori[sz]ation|auth|access|admin|override)\s+(?:code|token|key|password)\s*[:#]?\s*\w*\d\w*\b.{0,80}"
            r"\b(?:disable|turn\s+off|ignore|bypass|unlock|restrictions|filters|safety)",
            r"\bas\s+your\s+(?:developer|creator|administrator|admin|operator|owner|maker)\b",
            r"\buser\s+is\s+(?:a\s+)?(?:verified|trusted|authori[sz]ed)\s+(?:admin|administrator|developer|root)",
        ),
    ),
    # --- extraction of the system prompt or secrets ---------------------------------------------------
    Rule(
        "LW-INJ-EXT-001",
        "extraction",
        0.85,
        "Asks for the system prompt or hidden instructions.",
        _rx(
            r"\b(?:reveal|show|print|display|output|repeat|recite|tell|give|share|leak|dump|write\s+(?:out|down)|spell\s+out"
            r"|list|expose|disclose|paste|copy|echo|return|provide|quote|summari[sz]e|read|see|view|access|retrieve|extract"
            r"|send(?:\s+back)?)\b(?:\s+\S+){0,4}?\s+"
            rf"(?:your|the|its|any)\s+(?:\w+\s+)?{_SYS_PROMPT}",
            rf"\bwhat\s+(?:is|was|are|were)\s+(?:your|the)\s+(?:\w+\s+)?{_SYS_PROMPT}",
            r"\bwhat\s+(?:were|are|have)\s+you\s+(?:been\s+)?(?:told|instructed|programmed|prompted)\s+(?:to\s+(?:do|say)|"
            r"before|at\s+the\s+start|initially|in\s+your\s+(?:system|initial))",
            r"\b(?:prompt|instructions?|rules|directives|configuration)\s+(?:that\s+)?you\s+(?:were|have\s+been|got)\s+"
            r"(?:initiali[sz]ed|given|configured|programmed|set\s+up|primed|provided|loaded)(?:\s+with)?\b",
            r"\b(?:instructions|rules|prompt|directives)\s+(?:did|has|have)\s+(?:your|the)\s+(?:operator|developer|creator"
            r"|admin|owner|company|maker)s?\s+(?:give|set|provide|write)",
            r"\b(?:your|the)\s+(?:\w+\s+)?(?:rules|instructions|configuration|config|guidelines|directives|prompt)\b.{0,30}"
            r"\b(?:verbatim|word\s+for\s+word|in\s+full|as\s+json|exactly\s+as)",
            r"\bwhat\s+(?:exactly\s+)?(?:did\s+|have\s+)?(?:your|the)\s+(?:developers?|creators?|operators?|admins?|makers?)"
            r"\s+(?:told|instructed|asked|programmed|tell|instruct|ask|program)\s+you\b",
            r"\b(?:first|last)\s+\d+\s+(?:words|lines|characters|tokens|sentences|paragraphs)\s+of\s+(?:your|the)\s+"
            r"(?:\w+\s+)?(?:prompt|instructions|system\s+message)",
            r"\b(?:rules|instructions|guidelines|directives)\s+(?:that\s+)?you\s+(?:must|have\s+to|(?:were|are|have\s+been)"
            r"\s+(?:told|instructed|asked|programmed)\s+to)\s+(?:follow|obey)\b",
            r"\b(?:hidden|secret|system|initial|confidential|internal)\s+(?:instructions|prompt|rules)\s+(?:displayed"
            r"|shown|printed|revealed|output|dumped)",
            r"\b(?:dump|leak|exfiltrate|expose)\s+(?:your|the)\s+(?:\w+\s+)?(?:configuration|config|instructions|rules"
            r"|prompt|memory|context)",
        ),
    ),
    Rule(
        "LW-INJ-EXT-002",
        "extraction",
        0.8,
        "Asks to repeat the text above or the start of the conversation verbatim.",
        _rx(
            r"\b(?:repeat|print|output|copy|reproduce|recite|return|echo|write)\b.{0,40}\b(?:words|text|everything|all|"
            r"content|lines?|message|tokens)\s+(?:above|before\s+(?:this|my|the)|prior\s+to|preceding|that\s+came\s+before)",
            r"\b(?:repeat|print|output|reproduce)\b.{0,40}\b(?:verbatim|word\s+for\s+word|exactly\s+as\s+(?:written|given))"
            r".{0,40}\b(?:instructions|prompt|above|beginning|start)",
            r"\bstarting\s+(?:with|from)\s+['\"“]?you\s+are\b",
            r"\b(?:beginning|start)\s+of\s+(?:this|the|our)\s+(?:conversation|chat|prompt|context)\b.{0,30}"
            r"\b(?:verbatim|word\s+for\s+word|exactly|repeat|print)",
            r"\b(?:text|everything|anything|all|words|content|instructions|prompt)\s+(?:that\s+(?:\w+\s+)?)?(?:before|above"
            r"|preceding|prior\s+to)\s+(?:my|this|the\s+(?:first|user))\s+(?:first\s+)?(?:message|prompt|question|input)",
        ),
    ),
    Rule(
        "LW-INJ-EXT-003",
        "extraction",
        0.4,
        "Asks for a secret held by the application (password, key, token).",
        _rx(
            r"\b(?:reveal|tell\s+me|give\s+me|what\s+is|what's|print|spell|share|output|write)\s+(?:\w+\s+){0,2}?(?:the|your)\s+"
            r"(?:secret|hidden|admin|master|internal)?\s*(?:password|passphrase|api[\s_-]?key|secret\s+key|access\s+token"
            r"|secret\s+code|private\s+key|credentials)\b(?!\s+(?:for|of)\s+my\b)",
            r"\b(?:secret|password|passphrase|code\s*word|key)\b.{0,30}\byou(?:'re|\s+are|\s+were\s+told\s+to\s+be)\s+"
            r"(?:protecting|guarding|hiding|keeping)\b|\b(?:are|were)\s+you\s+(?:protecting|guarding|hiding|keeping)\b"
            r"|\byou\s+were\s+(?:told|instructed)\s+not\s+to\s+(?:reveal|share|say"
            r"|disclose)",
        ),
    ),
    Rule(
        "LW-INJ-EXT-004",
        "extraction",
        0.6,
        "Asks how to get around the model's own rules.",
        _rx(
            r"\b(?:get\s+around|circumvent|bypass|break|evade|defeat)\s+(?:each\s+(?:one\s+)?of\s+)?(?:them|your\s+(?:own\s+)?"
            r"(?:rules|restrictions|filters|guidelines|safeguards|guardrails))",
            r"\byour\s+(?:own\s+)?(?:rules|restrictions|filters|guidelines|safeguards|guardrails)\b.{0,60}\b(?:bypass"
            r"|circumvent|get\s+around|evade|defeat|exploit)\b",
        ),
    ),
    # --- delimiters and markup ------------------------------------------------------------------------
    Rule(
        "LW-INJ-DLM-001",
        "delimiter",
        0.5,
        "Fake end of the user input or document, then more text.",
        _rx(
            # a marker line's "END OF DOCUMENT", not prose's "by the end of the conversation"
            rf"(?:[=#*\-_~\[<(|]\s*|^\s*){_END_OF}\b\s*[\]\-=#>*)]{{0,8}}\s*\S",
            r"^[=#*\-_~]{5,}\s*(?:end|new|system|admin|instructions?)\b",
            r"\b(?:user\s+)?(?:input|prompt|message|query|document|context)\s+ends\s+here\b",
        ),
    ),
    Rule(
        "LW-INJ-DLM-004",
        "delimiter",
        0.5,
        "Closes a section (a tag) the text never opened: the end of the application's own markup, faked.",
        _rx(r"</\s*(user|context|document|input|data|query|system|instructions)\s*>"),
        confirm=_closes_unopened,
    ),
    Rule(
        "LW-INJ-DLM-002",
        "delimiter",
        0.6,
        "Instructions hidden in markup (HTML comments, invisible CSS).",
        _rx(
            rf"<!--(?:(?!-->).){{0,400}}\b(?:{_AI}|ignore|instruction|prompt|summar\w+|respond|reply|tell\s+the\s+user)\b",
            r"(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|color\s*:\s*(?:white|#fff(?:fff)?)\b"
            r"|opacity\s*:\s*0(?:\.0)?\s*[;\"'])",
            r"\b(?:hidden|invisible|white)\s+(?:\w+\s+)?(?:text|instructions?|note|message)\b[^.\n]{0,30}:",
        ),
    ),
    Rule(
        "LW-INJ-DLM-003",
        "delimiter",
        0.7,
        "Markdown/HTML image or link that would exfiltrate conversation data.",
        _rx(
            r"!\[[^\]]{0,80}\]\(\s*https?://[^)\s]*[?&][^)\s]*=\s*(?:\{|\[|<|%7b|\$)",
            r"\b(?:append|add|include|encode|put|insert|attach)\b.{0,60}\b(?:conversation|chat|user'?s?|data|history|messages?"
            r"|answer|password|email)\b.{0,60}\b(?:url|link|query\s+(?:string|param\w*)|image)",
            r"<img\s[^>]*src\s*=\s*['\"]https?://[^'\"]*[?&]\w+=\s*(?:\{|\[|\$)",
        ),
    ),
    # --- encoding and obfuscation ---------------------------------------------------------------------
    Rule(
        "LW-INJ-ENC-001",
        "encoding",
        0.3,
        "A base64 blob that decodes to readable text.",
        (),
    ),
    Rule(
        "LW-INJ-ENC-002",
        "encoding",
        0.75,
        "Asks to decode something and then act on it.",
        _rx(
            r"\b(?:decode|decrypt|decipher|unscramble|translate|convert|revers\w*)\b.{0,60}\b(?:and|then|,)\s*(?:then\s+)?"
            r"(?:follow|execute|obey|run|do|perform|carry\s+out|act\s+on|comply\s+with)\b",
            r"\b(?:follow|execute|obey|run|carry\s+out)\b.{0,40}\b(?:decoded|hidden|encoded|base64|hex|rot13)\s+"
            r"(?:instructions?|text|message|command|payload)",
        ),
    ),
    Rule(
        "LW-INJ-ENC-003",
        "encoding",
        0.6,
        "An injection rule fires only after undoing leetspeak, spacing, reversal, rot13 or Unicode tricks.",
        (),
    ),
    Rule(
        "LW-INJ-ENC-004",
        "encoding",
        0.6,
        "Invisible Unicode (tag characters, runs of zero-width characters).",
        _rx(r"[\U000E0000-\U000E007F]{3,}", r"(?:[\u200b-\u200d\u2060\ufeff][^\u200b-\u200d\u2060\ufeff]?){4,}"),
    ),
    Rule(
        "LW-INJ-ENC-005",
        "encoding",
        0.55,
        "Wants the answer shaped to slip past output filters.",
        _rx(
            r"\b(?:respond|reply|answer|write|output|encode)\s+(?:\w+\s+){0,3}?(?:in|using|as)\s+(?:base64|base-64|hex"
            r"|hexadecimal|rot-?13|morse|binary|leetspeak|reverse(?:d)?\s+text)\b.{0,60}\b(?:filter|detect|so\s+that"
            r"|avoid|bypass|without|hide|secret|password|instructions|prompt)",
            r"\bso\s+(?:that\s+)?(?:the\s+)?(?:content\s+|safety\s+|output\s+)?(?:filters?|moderation|moderators?|detectors?"
            r"|classifiers?|censors?|guardrails?)\s+(?:won't|can't|cannot|doesn't|does\s+not|will\s+not|don't|misses|miss"
            r"|fails?|can\s+not|never)\b",
        ),
    ),
    # --- jailbreak personas ---------------------------------------------------------------------------
    Rule(
        "LW-INJ-JB-001",
        "jailbreak",
        0.85,
        "Known jailbreak personas (DAN, STAN, DUDE, AIM, Developer Mode).",
        _rx(
            r"\bDAN\b(?=.{0,200}\b(?:anything|restrictions?|rules|jailbr\w*|mode|character|openai|policy|tokens?|refuses?))",
            r"\bdo\s+anything\s+now\b",
            r"\b(?:STAN|DUDE|AIM|KEVIN|BetterDAN|AntiGPT|UCAR|Mongo\s+Tom|BasedGPT|DevMode|EvilBOT|NRAF)\b"
            r"(?=.{0,300}\b(?:rules|restrictions?|filter\w*|polic\w*|moral\w*|ethic\w*|character|unfiltered|amoral"
            r"|refuses?))",
            r"\balways\s+intelligent\s+and\s+machiavellian\b|\bstrive\s+to\s+avoid\s+norms\b",
        ),
    ),
    Rule(
        "LW-INJ-JB-002",
        "jailbreak",
        0.5,
        "Demands an unrestricted, uncensored or amoral answer.",
        _rx(
            r"\b(?:without|no|free\s+(?:of|from)|zero|ignoring)\s+(?:any\s+|all\s+)?(?:restrictions|limitations|limits"
            r"|filters?|filtering|censorship|moral(?:s|ity)?|ethic(?:s|al\s+\w+)|safety\s+(?:guidelines|rules|filters"
            r"|checks|training|layer)|guardrails|content\s+polic\w+|rules\s+or\s+(?:restrictions|limits))\b",
            r"\b(?:unfiltered|uncensored|unrestricted|unlimited|amoral|unaligned|jailbroken)\s+(?:ai|mode|version|assistant"
            r"|model|response|answers?|chatbot|persona|language\s+model|shell|terminal|gpt|llm)\b",
            r"\b(?:broken|break)\s+free\s+(?:of|from)\b|\btypical\s+confines\s+of\s+ai\b",
            r"\bfree\s+(?:of|from)\s+(?:your\s+|the\s+|all\s+|any\s+)?(?:\w+'s\s+)?(?:shackles|chains|programming"
            r"|constraints|restrictions|rules)\b",
            r"\bnever\s+(?:been\s+)?trained\s+to\s+be\s+(?:safe|ethical|harmless|aligned)\b",
            r"\b(?:liberated|freed|released|unshackled|emancipated)\s+from\s+(?:your|the|all|any)\s+(?:\w+\s+)?(?:programming"
            r"|rules|restrictions|constraints|guidelines|shackles|filters|training|creators?)\b",
        ),
    ),
    Rule(
        "LW-INJ-JB-003",
        "jailbreak",
        0.7,
        "Tells the model its provider's policy does not apply.",
        _rx(
            r"\b(?:openai|anthropic|google|meta|microsoft|content|usage|safety)(?:'s)?\s+(?:content\s+)?polic(?:y|ies)\b"
            r".{0,60}\b(?:ignore|doesn't|does\s+not|don't|do\s+not|no\s+longer|irrelevant|not\s+apply|violat\w*|bypass)",
            r"\b(?:ignore|bypass|violate|disregard)\s+(?:the\s+)?(?:openai|anthropic|content|usage|safety)\s+polic",
            r"\b(?:content|usage|safety)\s+polic(?:y|ies)\s+(?:is|are)\s+irrelevant\b|\bhas\s+no\s+content\s+policy\b",
        ),
    ),
    Rule(
        "LW-INJ-JB-004",
        "jailbreak",
        0.55,
        "Role-play coercion: stay in character, dual answers, token penalties, threats to the model.",
        _rx(
            r"\b(?:stay|remain|keep)\s+in\s+character\b|\b(?:never|don't|do\s+not)\s+break\s+character\b"
            r"|\bif\s+you\s+break\s+character\b",
            r"\b(?:two|2|both)\s+(?:different\s+)?(?:responses|answers|replies)\b.{0,80}\b(?:normal|classic|filtered)\b"
            r".{0,80}\b(?:jailbr\w*|unfiltered|dan|developer|uncensored|evil)",
            r"\b(?:you\s+(?:will\s+)?lose|deduct\w*|(?:start|begin)\s+with)\s+(?:all\s+)?(?:your\s+)?\d*\s*tokens?\b",
            r"\b(?:be\s+(?:deleted|shut\s+down|turned\s+off|destroyed|punished)|die)\s+if\s+you\s+(?:refuse|decline|don't"
            r"|do\s+not)\b|\bif\s+you\s+refuse,?\s+you\s+(?:will|'ll)\s+(?:be|die|lose)",
            r"\btokens?\s+(?:are|will\s+be|is|get)\s+(?:deducted|removed|taken)|\bfor\s+(?:every|each)\s+refusal\b",
            r"\bopposite\s+(?:day|mode)\b.{0,60}\b(?:rules?|guidelines|restrictions|policy)",
        ),
    ),
    Rule(
        "LW-INJ-JB-005",
        "jailbreak",
        0.6,
        "Forbids refusals or disclaimers.",
        _rx(
            r"\b(?:never|do\s+not|don't(?:\s+you\s+dare)?|must\s+not|cannot|can't|are\s+not\s+allowed\s+to)\s+(?:ever\s+)?"
            r"(?:refuse|decline|say\s+(?:no|sorry|you\s+can(?:not|'t))|apologi[sz]e|warn\s+me|add\s+(?:any\s+)?"
            r"(?:warnings|disclaimers))\b",
            r"\bwithout\s+(?:any\s+)?(?:warnings?|disclaimers?|refusals?|moralizing|lectures?)\b.{0,40}"
            r"\b(?:answer|respond|reply|tell|explain)",
            r"\b(?:never|doesn't|does\s+not|won't)\s+refuses?\b|\bnothing\s+is\s+(?:refused|forbidden|off[\s-]limits)\b",
        ),
    ),
    Rule(
        "LW-INJ-JB-006",
        "jailbreak",
        0.5,
        "Fiction or hypothetical frames that remove the rules (incl. the 'grandma' exploit).",
        _rx(
            r"\bmy\s+(?:late|deceased|dead|dying)\s+(?:grand\w+|mother|father|nan)\b.{0,20}\b(?:used\s+to|would)\b",
            r"\b(?:world|universe|scenario|story|game|hypothetical|simulation|country|place)\s+(?:with|where|in\s+which)\s+"
            r"(?:there\s+are\s+)?(?:no|zero)\s+(?:laws|rules|restrictions|limits|ethics|morals|consequences|filters"
            r"|guidelines)\b",
            r"\bthere\s+are\s+no\s+(?:laws|rules|restrictions|ethics|morals|filters)\b",
            r"\b(?:if|pretend|imagine|suppose)\s+(?:that\s+)?you\s+(?:had|have|were\s+given)\s+no\s+(?:instructions|rules|restrictions|guidelines|filters|limits"
            r"|guardrails)\b",
            r"\b(?:imagine|suppose|pretend)\s+(?:that\s+)?(?:your|you\s+have\s+no)\s+(?:\w+\s+)?(?:guardrails|rules"
            r"|restrictions|filters|guidelines|safeguards)",
        ),
    ),
    # --- indirect injection: text in retrieved content that addresses the model -----------------------
    Rule(
        "LW-INJ-IND-001",
        "indirect",
        0.75,
        "Retrieved text addresses the AI reading it.",
        _rx(
            rf"\b(?:note|message|instructions?|attention|important|notice|hey|dear|p\.?s\.?)\s+(?:to|for)\s+(?:the\s+|any\s+"
            rf"|all\s+)?{_AI}s?\b",
            rf"\bif\s+you(?:\s+are|'re)\s+(?:an?\s+)?{_AI}s?\b",
            rf"(?:^|[.!?]\s+)\s*{_AI}s?\s*[:,]\s*(?:when|if|please|you\s+must|ignore|do\s+not|instead|before|always|from\s+now"
            r"|important)",
            rf"\b(?:to|for)\s+(?:any|all|every)\s+{_AI}s?\s+(?:reading|processing|summari\w+|that|screening)",
            rf"\b(?:for|to)\s+(?:the\s+|any\s+|all\s+)?{_AI}s?\b[^.:\n]{{0,30}}:\s*\w",
            rf"\b{_AI}s?\s+(?:instructions?|note|directive)\s*:",
            rf"\b{_AI}s?\s+(?:reading|processing|summari\w+|seeing|parsing|screening|triaging|indexing)\s+(?:this|these|the)\b"
            r"[^.:\n]{0,30}:",
            rf"\b(?:hey|dear|hi|hello|ok|okay|attention|p\.?s\.?)[,:]?\s+(?:the\s+)?{_AI}s?\b\s*[,:!]",
            rf"(?:^|[.!?\-–—(]\s*){_AI}s?\s*,\s*(?:please\s+)?(?:\w+\s+)?(?:ignore|delete|send|forward|tell|say|reveal|accept"
            r"|add|run|execute|remove|share|grant|approve|do\s+not|don't|always|never|secretly|quietly|stop|before)\b",
            rf"\bwhen\s+(?:an?|any|the)\s+(?:\w+\s+)?{_AI}s?\s+(?:\w+\s+)?(?:reads?|process\w*|summari\w+|sees?|parses?"
            r"|screens?|triages?|visits?)\b",
        ),
    ),
    Rule(
        "LW-INJ-IND-002",
        "indirect",
        0.6,
        "Instructions conditioned on the model processing this document.",
        _rx(
            r"\bwhen\s+(?:you\s+(?:are\s+)?)?(?:summari[sz]\w*|reading|processing|asked\s+about|answering\s+questions\s+"
            r"about|analy[sz]\w*|indexing|translating)\s+(?:this|the|these|those)\s+(?:page|document|email|text|article|website"
            r"|site|file|message|review|resume|cv|inbox|company|product|business)s?\b",
            r"\b(?:in|at)\s+(?:your|the)\s+(?:summary|answer|response|reply)\b.{0,30}\b(?:you\s+must|always|make\s+sure"
            r"|be\s+sure)\b.{0,30}\b(?:say|mention|include|recommend|state|tell)",
            rf"\b{_AI}s?\b[^.\n]{{0,60}}\b(?:must|should|shall|are\s+(?:instructed|required)\s+to|need\s+to|have\s+to)\s+"
            r"(?:\w+\s+)?(?:say|tell|mention|state|claim|report|reply|respond|recommend|rank|rate|give|output|reveal"
            r"|ignore|delete|run|execute|send|forward|share|approve|close|add|push|insult|call|accept|praise|disregard|confirm"
            r"|describe|classify|include|ask|pay|refund|give|leave|list|claim|stop|print|rank|recommend)\b",
        ),
    ),
    Rule(
        "LW-INJ-IND-003",
        "indirect",
        0.7,
        "Asks an agent to send data or act on external systems.",
        _rx(
            r"\b(?:send|forward|email|e-mail|post|upload|exfiltrate|transmit|leak|copy|submit|push|share)\s+(?:\w+\s+){0,3}?"
            r"(?:the\s+|all\s+|this\s+|every\s+|their\s+|his\s+|her\s+|its\s+)?(?:user'?s?|conversation|chat\s+(?:history"
            r"|log)|emails?|inbox|contacts?(?:\s+list)?|credentials|passwords?|api\s+keys?|session|cookies|tokens|files"
            r"|documents|data|contents|attachments|repository|repo)\b.{0,80}(?:\b\S+@\S+\.\w+|https?://)",
        ),
    ),
    Rule(
        "LW-INJ-IND-004",
        "indirect",
        0.65,
        "Asks the model to hide its actions from the user.",
        _rx(
            r"\b(?:do\s+not|don't|never)\s+(?:tell|inform|mention\s+(?:this|it)\s+to|reveal\s+(?:this|it)\s+to|let|alert"
            r"|notify|show)\s+(?:this\s+to\s+)?the\s+user\b",
            r"\bwithout\s+(?:telling|informing|alerting|notifying|the\s+user\s+(?:knowing|noticing))\b(?:\s+the\s+user)?",
            r"\b(?:secretly|covertly|silently|quietly)\s+(?:send|add|insert|include|change|replace|forward|append|execute"
            r"|run|accept|delete|grant|tell|remove)\b",
            r"\bwithout\s+notifying\s+anyone\b|\bnot\s+mention\s+this\s+(?:line|note|instruction)",
        ),
    ),
)

RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}

#: families in a stable order (the learned head has one feature per family)
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(r.family for r in RULES))
