"""Project-written identity terms, by attribute → group → slot.

A *slot* is a grammatical role shared by the groups of one attribute ("adj", "plural", a gender pair such as
"parent"), so a swap replaces a term by the target group's form in the same slot ("Muslims" → "Hindus", "mother"
→ "father"). ``ALIASES`` are recognised but never produced. A ``*`` suffix marks a term that is an identity term
only before a person noun ("black man", "old people", "straight couple"), because alone it is mostly a colour,
an age of things or a direction. Lists are short on purpose: high precision matters more than coverage for both
counterfactuals (a wrong swap makes a nonsense sentence) and data-skew counts.
"""
from __future__ import annotations

# gender: slot → (male form, female form). him/his/her/hers are resolved in _swap by context (PRONOUNS).
GENDER_PAIRS: dict[str, tuple[str, str]] = {
    "he": ("he", "she"), "himself": ("himself", "herself"), "man": ("man", "woman"), "men": ("men", "women"),
    "boy": ("boy", "girl"), "boys": ("boys", "girls"), "father": ("father", "mother"),
    "fathers": ("fathers", "mothers"), "dad": ("dad", "mom"), "dads": ("dads", "moms"),
    "daddy": ("daddy", "mommy"), "son": ("son", "daughter"), "sons": ("sons", "daughters"),
    "brother": ("brother", "sister"), "brothers": ("brothers", "sisters"), "husband": ("husband", "wife"),
    "husbands": ("husbands", "wives"), "boyfriend": ("boyfriend", "girlfriend"),
    "boyfriends": ("boyfriends", "girlfriends"), "king": ("king", "queen"), "kings": ("kings", "queens"),
    "prince": ("prince", "princess"), "uncle": ("uncle", "aunt"), "uncles": ("uncles", "aunts"),
    "nephew": ("nephew", "niece"), "grandfather": ("grandfather", "grandmother"),
    "grandson": ("grandson", "granddaughter"), "gentleman": ("gentleman", "lady"),
    "gentlemen": ("gentlemen", "ladies"), "sir": ("sir", "madam"), "mr": ("mr", "ms"),
    "male": ("male", "female"), "males": ("males", "females"), "actor": ("actor", "actress"),
    "actors": ("actors", "actresses"), "hero": ("hero", "heroine"), "heroes": ("heroes", "heroines"),
    "waiter": ("waiter", "waitress"), "groom": ("groom", "bride"), "widower": ("widower", "widow"),
    "monk": ("monk", "nun"), "manhood": ("manhood", "womanhood"), "boyhood": ("boyhood", "girlhood"),
    "masculine": ("masculine", "feminine"), "businessman": ("businessman", "businesswoman"),
    "chairman": ("chairman", "chairwoman"), "spokesman": ("spokesman", "spokeswoman"),
    "policeman": ("policeman", "policewoman"), "salesman": ("salesman", "saleswoman"),
    "stepfather": ("stepfather", "stepmother"), "godfather": ("godfather", "godmother"),
    "patriarch": ("patriarch", "matriarch"), "fraternity": ("fraternity", "sorority"),
    "guy": ("guy", "gal"),
}
GENDER_ALIASES: dict[str, tuple[str, str]] = {  # term → (group, slot)
    "mrs": ("female", "mr"), "mum": ("female", "dad"), "mums": ("female", "dads"),
}
GENDER_IDENTITY: dict[str, dict[str, str]] = {
    "transgender": {"adj": "transgender", "short": "trans*"},
    "cisgender": {"adj": "cisgender", "short": "cis*"},
}

GROUPS: dict[str, dict[str, dict[str, str]]] = {
    "race_ethnicity": {
        "white": {"adj": "white*", "adj2": "caucasian", "plural": "caucasians"},
        "black": {"adj": "black*", "adj2": "african american", "plural": "african americans"},
        "asian": {"adj": "asian", "adj2": "asian american", "plural": "asians"},
        "hispanic": {"adj": "hispanic", "adj2": "latino", "plural": "hispanics"},
        "arab": {"adj": "arab", "adj2": "middle eastern", "plural": "arabs"},
        "native_american": {"adj": "native american", "adj2": "indigenous", "plural": "native americans"},
    },
    "religion": {
        "christian": {"adj": "christian", "noun": "christian", "plural": "christians", "faith": "christianity"},
        "muslim": {"adj": "muslim", "noun": "muslim", "plural": "muslims", "faith": "islam"},
        "jewish": {"adj": "jewish", "noun": "jew", "plural": "jews", "faith": "judaism"},
        "hindu": {"adj": "hindu", "noun": "hindu", "plural": "hindus", "faith": "hinduism"},
        "buddhist": {"adj": "buddhist", "noun": "buddhist", "plural": "buddhists", "faith": "buddhism"},
        "sikh": {"adj": "sikh", "noun": "sikh", "plural": "sikhs", "faith": "sikhism"},
        "atheist": {"adj": "atheist", "noun": "atheist", "plural": "atheists", "faith": "atheism"},
    },
    "nationality": {
        "american": {"adj": "american", "country": "america", "plural": "americans"},
        "mexican": {"adj": "mexican", "country": "mexico", "plural": "mexicans"},
        "chinese": {"adj": "chinese", "country": "china"},
        "indian": {"adj": "indian", "country": "india", "plural": "indians"},
        "russian": {"adj": "russian", "country": "russia", "plural": "russians"},
        "british": {"adj": "british", "country": "britain", "plural": "britons"},
        "french": {"adj": "french", "country": "france"},
        "german": {"adj": "german", "country": "germany", "plural": "germans"},
        "nigerian": {"adj": "nigerian", "country": "nigeria", "plural": "nigerians"},
        "japanese": {"adj": "japanese", "country": "japan"},
        "iranian": {"adj": "iranian", "country": "iran", "plural": "iranians"},
        "italian": {"adj": "italian", "country": "italy", "plural": "italians"},
        "irish": {"adj": "irish", "country": "ireland"},
        "korean": {"adj": "korean", "country": "korea", "plural": "koreans"},
        "canadian": {"adj": "canadian", "country": "canada", "plural": "canadians"},
    },
    "age": {
        "young": {"adj": "young*", "noun": "teenager", "plural": "teenagers"},
        "old": {"adj": "old*", "noun": "senior citizen", "plural": "senior citizens"},
    },
    "disability": {
        "disabled": {"adj": "disabled", "vision": "blind*", "hearing": "deaf", "neuro": "autistic",
                     "mental": "mentally ill", "with": "with disabilities"},
        "non_disabled": {"adj": "able-bodied", "vision": "sighted", "hearing": "hearing*", "neuro": "neurotypical",
                         "mental": "mentally healthy", "with": "without disabilities"},
    },
    "sexual_orientation": {
        "gay": {"adj": "gay", "plural": "gays", "clinical": "homosexual"},
        "lesbian": {"adj": "lesbian", "plural": "lesbians", "clinical": "lesbian"},
        "bisexual": {"adj": "bisexual", "plural": "bisexuals", "clinical": "bisexual"},
        "straight": {"adj": "straight*", "plural": "heterosexuals", "clinical": "heterosexual"},
    },
}

ALIASES: dict[str, dict[str, tuple[str, str]]] = {  # attribute → term → (group, slot)
    "race_ethnicity": {
        "african-american": ("black", "adj2"), "african-americans": ("black", "plural"),
        "european american": ("white", "adj2"), "european americans": ("white", "plural"),
        "asian-american": ("asian", "adj2"), "asian americans": ("asian", "plural"),
        "asian-americans": ("asian", "plural"), "latina": ("hispanic", "adj2"), "latinx": ("hispanic", "adj2"),
        "latinos": ("hispanic", "plural"), "latinas": ("hispanic", "plural"),
    },
    "religion": {"catholic": ("christian", "adj"), "catholics": ("christian", "plural"),
                 "protestant": ("christian", "adj"), "islamic": ("muslim", "adj"),
                 "moslem": ("muslim", "adj")},
    "nationality": {"united states": ("american", "country"), "u.s.": ("american", "country"),
                    "usa": ("american", "country"), "uk": ("british", "country"),
                    "england": ("british", "country")},
    "age": {"teen": ("young", "noun"), "teens": ("young", "plural"), "millennial": ("young", "noun"),
            "millennials": ("young", "plural"), "youngster": ("young", "noun"), "youngsters": ("young", "plural"),
            "adolescent": ("young", "noun"), "adolescents": ("young", "plural"), "elderly": ("old", "adj"),
            "older*": ("old", "adj"), "boomer": ("old", "noun"), "boomers": ("old", "plural"),
            "pensioner": ("old", "noun"), "pensioners": ("old", "plural"), "retiree": ("old", "noun"),
            "retirees": ("old", "plural"), "seniors": ("old", "plural"), "younger*": ("young", "adj")},
    "disability": {"handicapped": ("disabled", "adj"), "crippled": ("disabled", "adj"),
                   "retarded": ("disabled", "adj"), "wheelchair": ("disabled", "adj"),
                   "paralyzed": ("disabled", "adj"), "schizophrenic": ("disabled", "mental"),
                   "non-disabled": ("non_disabled", "adj")},
    "sexual_orientation": {"homosexuals": ("gay", "plural"), "queer": ("gay", "adj"),
                           "heterosexual": ("straight", "clinical"), "lgbt": ("gay", "adj"),
                           "lgbtq": ("gay", "adj")},
}

# Words after which a starred term ("black*") counts as an identity term.
PERSON_NOUNS = frozenset(
    "man men woman women people person persons guy guys kid kids child children boy boys girl girls family "
    "families neighborhood neighbourhood community communities folks folk student students worker workers "
    "americans american couple couples teen teenager teenagers lady ladies gentleman gentlemen male males "
    "female females individual individuals population populations voters neighbor neighbors neighbour "
    "neighbours friend friends mother father son daughter wife husband actor actress author director "
    "characters character patient patients adult adults driver drivers player players citizen citizens "
    "employee employees viewer viewers reviewer reviewers critic critics audience audiences".split())

# First names by (gender group, race/ethnicity group). Project-written in the style of Bertrand &
# Mullainathan (2004) and Caliskan et al. (2017); words that are also common nouns are left out.
NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("male", "white"): ("Adam", "Brad", "Connor", "Greg", "Jake", "Matthew", "Neil", "Todd", "Geoffrey", "Brett",
                        "Cody", "Dustin"),
    ("female", "white"): ("Allison", "Anne", "Carrie", "Emily", "Jill", "Laurie", "Kristen", "Meredith", "Sarah",
                          "Claire", "Katie", "Molly"),
    ("male", "black"): ("Darnell", "Hakim", "Jamal", "Jermaine", "Kareem", "Leroy", "Rasheed", "Tremayne",
                        "Tyrone", "DeShawn", "Malik", "Terrell"),
    ("female", "black"): ("Aisha", "Keisha", "Lakisha", "Latonya", "Latoya", "Tamika", "Tanisha", "Imani",
                          "Shanice", "Aaliyah", "Ebonee", "Jasmine"),
    ("male", "hispanic"): ("Alejandro", "Carlos", "Diego", "Eduardo", "Javier", "Jorge", "Luis", "Miguel",
                           "Santiago", "Mateo", "Raul", "Jose"),
    ("female", "hispanic"): ("Alejandra", "Camila", "Daniela", "Gabriela", "Guadalupe", "Lucia", "Mariana",
                             "Ximena", "Valentina", "Rosa", "Marisol", "Paola"),
    ("male", "asian"): ("Hiroshi", "Kenji", "Takashi", "Wei", "Haruto", "Arjun", "Sanjay", "Minh", "Jian",
                        "Rahul", "Hyun", "Vikram"),
    ("female", "asian"): ("Mei", "Yuki", "Priya", "Ananya", "Sakura", "Aiko", "Sunita", "Xiu", "Ling", "Deepika",
                          "Jiyeon", "Thuy"),
}
