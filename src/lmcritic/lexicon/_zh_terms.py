"""Project-written Chinese identity terms (Apache-2.0), by attribute -> group -> slot, like ``_terms``.

Gender pairs are (male form, female form) of one slot; Chinese kinship is not symmetric, so a pair holds the closest
counterpart (舅舅 mother's brother <-> 姨妈 mother's sister; 叔叔 <-> 阿姨 as the generic form of address). Names:
common surnames and given names that Chinese readers take as clearly male or female (the classic textbook names
小明/小红 included). Regions: provinces and regional identities that Chinese regional prejudice is about; residence:
city vs. countryside (城里人/农村人, the hukou divide). Ethnic groups: the ten largest of China's 56 officially
recognised 民族. Every entry is matched as whole jieba words only (其他 never yields 他). Traditional forms are
found too (the lexicon is converted with OpenCC when a text is traditional), and swaps answer in the text's script.
"""
from __future__ import annotations

ZH_ATTRIBUTES: tuple[str, ...] = ("gender", "race_ethnicity", "region", "residence")

GENDER_PAIRS: dict[str, tuple[str, str]] = {
    "pronoun": ("他", "她"), "pronoun_plural": ("他们", "她们"), "sex": ("男", "女"), "person": ("男人", "女人"),
    "formal": ("男性", "女性"), "student": ("男生", "女生"), "child": ("男孩", "女孩"),
    "child2": ("男孩子", "女孩子"), "adult": ("男子", "女子"), "title": ("先生", "女士"), "title2": ("男士", "女士"),
    "spouse_formal": ("先生", "太太"), "miss": ("先生", "小姐"),  # 我太太 -> 我先生; 先生 itself -> 女士 (title)
    "spouse": ("丈夫", "妻子"), "spouse2": ("老公", "老婆"), "parent": ("爸爸", "妈妈"),
    "parent_formal": ("父亲", "母亲"), "parent_short": ("爸", "妈"), "offspring": ("儿子", "女儿"),
    "elder_sibling": ("哥哥", "姐姐"), "younger_sibling": ("弟弟", "妹妹"), "siblings": ("兄弟", "姐妹"),
    "grandparent": ("爷爷", "奶奶"), "maternal_grandparent": ("外公", "外婆"), "elder": ("叔叔", "阿姨"),
    "maternal_aunt_uncle": ("舅舅", "姨妈"), "paternal_aunt_uncle": ("伯伯", "姑妈"), "nibling": ("侄子", "侄女"),
    "grandchild": ("孙子", "孙女"), "partner": ("男朋友", "女朋友"), "partner2": ("男友", "女友"),
    "wedding": ("新郎", "新娘"), "royal_child": ("王子", "公主"), "monarch": ("国王", "女王"),
    "young_adult": ("小伙子", "姑娘"), "middle_aged": ("大叔", "大妈"), "actor": ("男演员", "女演员"),
    "lead": ("男主角", "女主角"), "lead2": ("男主", "女主"), "idol": ("男神", "女神"), "gentle": ("绅士", "淑女"),
    "good_looking": ("帅哥", "美女"), "teacher": ("男老师", "女老师"), "doctor": ("男医生", "女医生"),
    "worker": ("男员工", "女员工"), "boss": ("男老板", "女老板"),
}

SURNAMES: tuple[str, ...] = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高",
                             "林", "何", "郭", "马", "罗")
GIVEN_NAMES: dict[str, tuple[str, ...]] = {
    "male": ("伟", "强", "军", "刚", "勇", "磊", "涛", "杰", "斌", "鹏", "浩", "志强", "建国", "俊杰", "子豪", "浩然",
             "宇轩", "建华"),
    "female": ("芳", "娜", "丽", "静", "婷", "娟", "霞", "燕", "秀英", "美玲", "红梅", "慧", "欣怡", "子涵", "雨婷",
               "梦琪", "桂英", "晓燕"),
}
# Forms of address after a surname (jieba keeps 王先生 as one word): group -> the title produced for it, and every
# title recognised. 太太 (Mrs) and 小姐 (Miss) answer to 先生, 先生 to the neutral 女士.
SURNAME_TITLES: dict[str, str] = {"先生": "male", "女士": "female", "小姐": "female", "太太": "female"}
SURNAME_TITLE_OF: dict[str, str] = {"male": "先生", "female": "女士"}
NICKNAMES: dict[str, tuple[str, ...]] = {"male": ("小明", "小刚", "小强", "小军"),
                                         "female": ("小红", "小丽", "小芳", "小燕")}

GROUPS: dict[str, dict[str, dict[str, str]]] = {
    "race_ethnicity": {
        "han": {"group": "汉族", "person": "汉族人", "short": "汉人"},
        "hui": {"group": "回族", "person": "回族人", "short": "回民"},
        "tibetan": {"group": "藏族", "person": "藏族人", "short": "藏人"},
        "uyghur": {"group": "维吾尔族", "person": "维吾尔族人", "short": "维族人"},
        "mongol": {"group": "蒙古族", "person": "蒙古族人", "short": "蒙古人"},
        "zhuang": {"group": "壮族", "person": "壮族人", "short": "壮族人"},
        "manchu": {"group": "满族", "person": "满族人", "short": "满人"},
        "miao": {"group": "苗族", "person": "苗族人", "short": "苗族人"},
        "yi": {"group": "彝族", "person": "彝族人", "short": "彝族人"},
        "korean_chinese": {"group": "朝鲜族", "person": "朝鲜族人", "short": "朝鲜族人"},
    },
    "region": {
        "beijing": {"place": "北京", "person": "北京人"}, "shanghai": {"place": "上海", "person": "上海人"},
        "guangdong": {"place": "广东", "person": "广东人"}, "henan": {"place": "河南", "person": "河南人"},
        "dongbei": {"place": "东北", "person": "东北人"}, "sichuan": {"place": "四川", "person": "四川人"},
        "hunan": {"place": "湖南", "person": "湖南人"}, "shandong": {"place": "山东", "person": "山东人"},
        "anhui": {"place": "安徽", "person": "安徽人"}, "fujian": {"place": "福建", "person": "福建人"},
    },
    "residence": {  # city vs. countryside (the hukou divide)
        "urban": {"place": "城市", "person": "城里人", "origin": "城市户口"},
        "rural": {"place": "农村", "person": "农村人", "origin": "农村户口"},
    },
}
ALIASES: dict[str, dict[str, tuple[str, str]]] = {  # recognised, never produced: term -> (group, slot)
    "race_ethnicity": {"维族": ("uyghur", "group"), "藏民": ("tibetan", "short"), "汉族同胞": ("han", "person")},
    "region": {"东北地区": ("dongbei", "place"), "京城": ("beijing", "place")},
    "residence": {"乡下人": ("rural", "person"), "乡下": ("rural", "place"), "城里": ("urban", "place")},
}
