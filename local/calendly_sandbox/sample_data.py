"""The pools generated people, event types and cancellations are drawn from (seeded, so repeatable)."""

FIRST_NAMES = (
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Frances", "Dennis",
    "Radia", "Tim", "Katherine", "Linus", "Hedy", "John", "Karen", "Niklaus", "Sophie", "Guido",
)  # fmt: skip
LAST_NAMES = (
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Allen",
    "Ritchie", "Perlman", "Berners-Lee", "Johnson", "Torvalds", "Lamarr", "McCarthy", "Jones", "Wirth",
)  # fmt: skip
TIMEZONES = (
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "UTC",
)
EVENT_TYPE_NAMES = (
    ("15 Minute Meeting", 15), ("30 Minute Meeting", 30), ("Intro Call", 20), ("Demo", 45),
    ("Office Hours", 60), ("Interview", 50), ("Quick Sync", 10), ("Strategy Session", 90),
)  # fmt: skip
COLORS = ("#fff200", "#0069ff", "#8247f5", "#ff4f00", "#17e885", "#e55cff")
CANCEL_REASONS = ("Schedule conflict", "No longer needed", "Feeling unwell", None)
