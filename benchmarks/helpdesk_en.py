"""A stand-in for an organisation's own English comments: a telecom and SaaS helpdesk.

The shipped English model learned the service corpus (``analysis/sentiment/corpus``);
these comments are about other things (fibre lines, eSIMs, number ports,
SSO, webhooks, invoices) in other words (British and Australian idioms such as
"sorted", "chuffed", "fobbed off", "shambles", light sarcasm, typos, text-speak),
so they measure what ``closedloop sentiment train`` adds on an organisation's
own comments. Generated at run time by the benchmark; not part of the shipped
corpus, never learned by the shipped models.

``helpdesk_comments(count, seed, wording)``: ``wording="seen"`` uses two thirds
of each fragment list, ``"unseen"`` requires each comment to use at least one
fragment of the remaining third (wording the training part never contains),
``"all"`` uses every fragment.
"""

from __future__ import annotations

import random
import re

_F: dict[str, list[str]] = {
    "name": ["Priya", "Tom", "Aroha", "Callum", "Mei", "Dev", "Siobhan", "Raj", "Kez"],
    "thing": [
        "my fibre line",
        "the 5G signal",
        "our SSO login",
        "the mesh wifi",
        "my eSIM",
        "the billing portal",
        "our webhooks",
        "the landline",
        "the admin dashboard",
        "my broadband",
        "the API",
        "voicemail",
    ],
    "p_action": [
        "got my eSIM activated in ten minutes",
        "reprovisioned the modem remotely and the line came straight back",
        "walked me through the router reset step by step",
        "ported my number over without a hitch",
        "escalated it to tier 2 and they nailed it",
        "restored our deleted workspace from backup",
        "patched the webhook bug the same afternoon",
        "sorted the SIM swap while I waited",
        "rebuilt our SSO config over a screen share",
        "had a tech out the next morning",
        "found the fault at the exchange and fixed it",
        "reset the API keys and we were back up",
    ],
    "p_state": [
        "is rock solid now",
        "hasn't dropped once since",
        "is flying now",
        "works perfectly again",
        "is back to full speed",
        "has been spot on ever since",
        "is finally stable",
        "is running like a dream",
        "is sorted for good",
    ],
    "p_money": [
        "the overcharge was reversed on the spot",
        "they waived the early termination fee",
        "my bill was credited straight away",
        "they refunded the roaming charges without a fuss",
        "got a goodwill credit for the outage",
        "the duplicate invoice was cancelled the same day",
        "they matched the promo price for me",
        "the refund landed within 24 hours",
        "they knocked a month off my bill",
    ],
    "p_slang": [
        "legend",
        "chuffed to bits",
        "cracking service",
        "can't fault them",
        "top job",
        "happy days",
        "ten out of ten",
        "cheers team",
        "absolute lifesaver",
        "ta very much",
        "bang on",
        "well chuffed",
    ],
    "p_noneg": [
        "no drama at all",
        "never had to chase anyone",
        "didn't have to repeat myself once",
        "not a single dropout since",
        "zero downtime during the migration",
        "no hold music, no runaround",
        "nothing to complain about",
        "no waiting around",
        "not one hiccup since",
    ],
    "p_attitude": [
        "the lady on the phone was lovely",
        "the tech was a proper gent",
        "the chat person was ace",
        "the installer was tidy and quick",
        "support was patient with my dodgy english",
        "the account manager went above and beyond",
        "the bloke on the line knew his stuff",
        "everyone was courteous",
        "the engineer explained it in plain words",
    ],
    "n_outage": [
        "has been down since Monday",
        "keeps dropping out every evening",
        "still cuts out in the middle of calls",
        "won't stay connected for more than an hour",
        "has no signal indoors whatsoever",
        "is crawling at dial-up speeds",
        "throws a 500 error every other login",
        "is still broken after three tickets",
        "drops every time it rains",
        "stopped working after their update",
    ],
    "n_money": [
        "charged twice for the same month and still no refund",
        "hit with roaming charges I never agreed to",
        "the promo discount vanished off my invoice",
        "billed for a line I cancelled in March",
        "still waiting on a credit promised six weeks ago",
        "slapped with an exit fee nobody mentioned",
        "the refund bounced and nobody will reissue it",
        "they upped the price without telling me",
        "paying full whack for half the speed",
    ],
    "n_runaround": [
        "fobbed off with a script",
        "the chatbot sent me round in loops",
        "each agent blamed the other department",
        "they keep blaming my router",
        "told to turn it off and on again for the fifth time",
        "passed from sales to tech to billing and back",
        "had to explain the whole saga from scratch every time",
        "got a different answer from every person",
        "they just read the FAQ back to me",
    ],
    "n_closed": [
        "the ticket was marked resolved but it's still broken",
        "they closed the case without even asking me",
        "it auto-closed after 48 hours and nothing had changed",
        "they said it was fixed on their end, it isn't",
        "case closed, problem very much open",
        "got a satisfaction survey before anyone looked at it",
        "status says resolved, reality says otherwise",
        "they closed it as user error, it was their outage",
    ],
    "n_noshow": [
        "the installer never turned up",
        "the engineer was a no-show twice",
        "they missed the appointment window with no text",
        "I took a day off work and nobody came",
        "the tech cancelled an hour after the slot",
        "waited in all day for a visit that never happened",
        "they rebooked me three times",
        "still no install date after a month",
    ],
    "n_callback": [
        "promised a ring back by end of day, crickets",
        "said they'd email me, never did",
        "radio silence since Tuesday",
        "the escalation team never got in touch",
        "nobody bothered to ring me back",
        "my emails just vanish into the void",
        "the supervisor call-back is a myth",
        "still no word from the complaints team",
    ],
    "n_slang": [
        "absolute shambles",
        "what a joke",
        "cowboys",
        "useless lot",
        "done with them",
        "porting my number elsewhere",
        "cancelling the contract",
        "sort it out",
        "rubbish from start to finish",
        "never again",
        "shocking",
        "a total farce",
    ],
    "n_sarcasm": [
        "great, another week without internet",
        "love paying for a service that doesn't work",
        "brilliant, cut off again",
        "fantastic, a fourth engineer visit",
        "thanks for nothing",
        "wonderful, on hold for the whole lunch break",
        "cheers for the extra charges",
        "nice to know my ticket matters so much",
    ],
    "wait": [
        "the queue was long",
        "it took a couple of tries",
        "I was on hold a fair while",
        "the first agent was clueless",
        "it took three days",
        "the app kept logging me out",
        "the first visit didn't fix it",
        "getting through was a pain",
    ],
    "p_end": [
        "they got there in the end",
        "the fix has stuck",
        "it's all working now",
        "the second tech sorted it properly",
        "they made it right",
        "it was worth the wait",
        "they came good",
        "everything's back to normal",
    ],
    "n_end": [
        "the outage is still there",
        "nothing actually got fixed",
        "I'm still without service",
        "the bill is still wrong",
        "I'm back to square one",
        "it broke again the next day",
        "the problem hasn't moved an inch",
        "I'm still paying for a dead line",
    ],
}

#: (label, template) — each template one way of saying something.
_TEMPLATES: list[tuple[int, str]] = [
    (1, "{name} {p_action}. {p_slang}"),
    (1, "{name} {p_action}, {p_noneg}."),
    (1, "{thing} {p_state}. {p_slang}!"),
    (1, "{thing} {p_state}, {p_noneg}."),
    (1, "{p_money}. {p_slang}"),
    (1, "{p_money}, {p_noneg}."),
    (1, "{p_attitude} and {thing} {p_state}."),
    (1, "{wait} but {p_end}."),
    (1, "{wait}, but {p_end}. {p_slang}"),
    (1, "Although {wait}, {p_end}."),
    (1, "{p_attitude}. {p_slang}"),
    (1, "{name} {p_action}. {p_money} too."),
    (1, "{p_noneg}. {thing} {p_state}."),
    (0, "{thing} {n_outage}. {n_slang}"),
    (0, "{thing} {n_outage} and {n_callback}."),
    (0, "{n_money}. {n_slang}"),
    (0, "{n_money}, {n_runaround}."),
    (0, "{n_runaround}. {thing} {n_outage}."),
    (0, "{n_closed}. {n_slang}"),
    (0, "{n_closed}, {n_callback}."),
    (0, "{n_noshow}. {n_slang}"),
    (0, "{n_noshow} and {n_callback}."),
    (0, "{n_sarcasm}. {thing} {n_outage}."),
    (0, "{n_sarcasm}."),
    (0, "{p_attitude} but {n_end}."),
    (0, "{p_attitude}, however {n_end}. {n_slang}"),
    (0, "{name} was nice enough but {n_end}."),
]

_TYPOS = {
    "definitely": "definately",
    "received": "recieved",
    "because": "cos",
    "you": "u",
    "thanks": "thx",
    "please": "pls",
    "really": "rly",
    "tomorrow": "tmrw",
    "though": "tho",
}
_SLOT = re.compile(r"\{(\w+)\}")


def _fill(template: str, rng: random.Random, wording: str) -> str | None:
    used_unseen = False

    def pick(match: re.Match[str]) -> str:
        nonlocal used_unseen
        options = _F[match.group(1)]
        if wording == "seen":
            options = [o for i, o in enumerate(options) if i % 3 != 2]
        index = rng.randrange(len(options))
        if wording == "unseen" and rng.random() < 0.5:
            unseen = [i for i in range(len(options)) if i % 3 == 2]
            index = rng.choice(unseen)
        if wording != "seen" and index % 3 == 2:
            used_unseen = True
        return options[index]

    text = _SLOT.sub(pick, template)
    if wording == "unseen" and not used_unseen:
        return None
    return text


def _style(text: str, label: int, rng: random.Random) -> str:
    """Capitalise sentences, then roughen some comments as people type them."""
    text = re.sub(r"(^|[.!?] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
    roll = rng.random()
    if roll < 0.25:
        text = text.lower()
    elif roll < 0.35:
        text = text.upper() if len(text) < 60 else text
    if rng.random() < 0.3:
        text = text.rstrip(".!")
    if rng.random() < 0.2:
        words = text.split(" ")
        text = " ".join(_TYPOS.get(w.lower(), w) for w in words)
    if rng.random() < 0.1:
        text += " !!!" if rng.random() < 0.5 else (" :)" if label else " :(")
    return text


def helpdesk_comments(count: int, seed: int, wording: str = "all") -> list[tuple[int, str]]:
    """Return ``count`` labelled ``(label, text)`` helpdesk comments, about half positive.

    ``wording``: ``"seen"`` (two thirds of each fragment list), ``"unseen"``
    (each comment uses at least one fragment of the other third) or ``"all"``.
    """
    if wording not in ("seen", "unseen", "all"):
        raise ValueError(f"wording must be seen, unseen or all, not {wording!r}")
    rng = random.Random(f"helpdesk/{seed}/{wording}")
    comments: list[tuple[int, str]] = []
    while len(comments) < count:
        label, template = rng.choice(_TEMPLATES)
        text = _fill(template, rng, wording)
        if text is not None:
            comments.append((label, _style(text, label, rng)))
    return comments


def flip_labels(examples: list[tuple[int, str]], share: float, seed: int) -> list[tuple[int, str]]:
    """Return ``examples`` with ``share`` of the labels flipped at random: comments labelled
    by the scores their customers gave (``train --from-responses``) are sometimes wrong."""
    rng = random.Random(f"flip/{seed}")
    return [(1 - label if rng.random() < share else label, text) for label, text in examples]


if __name__ == "__main__":
    for label, text in helpdesk_comments(20, seed=1):
        print(label, text)
