"""Chinese PII recognizers: mobile numbers, resident identity card numbers (checksum and birth date
validated), addresses, and names after a cue. Bank cards need nothing Chinese: UnionPay numbers are 16–19
digits that pass Luhn, which the card recognizer checks. Every recognizer runs on the text with full-width
forms folded to ASCII (１３８… is a phone number too); folding keeps offsets, so spans index the original.
"""
from __future__ import annotations

import re
from datetime import date

HAN = r"\u4e00-\u9fff"
MOBILE = re.compile(r"(?<![0-9])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?![0-9])")
RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}"
                         r"[0-9Xx](?![0-9A-Za-z])")
PROVINCES = ("北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 "
             "广东 海南 四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门").split()
_ROAD = (rf"[{HAN}0-9]{{1,12}}?(?:路|街|大道|大街|巷|弄|胡同)(?:[0-9一二三四五六七八九十]段)?"
         r"[0-9一二三四五六七八九十]{1,5}号"
         r"(?:院)?(?:[0-9]{1,4}(?:栋|幢|座|号楼))?(?:[0-9]{1,3}单元)?(?:[0-9]{1,5}(?:室|房|号))?")
_ESTATE = (rf"[{HAN}]{{2,6}}(?:小区|花园|公寓|大厦|新村)[0-9]{{1,3}}(?:栋|幢|座|号楼)"
           r"(?:[0-9]{1,3}单元)?(?:[0-9]{2,5}(?:室|号)?)?")
ADDRESS = re.compile(
    rf"(?:{'|'.join(PROVINCES)})(?:省|市|自治区|特别行政区)?[{HAN}0-9]{{0,16}}?(?:{_ROAD}|{_ESTATE})"
    rf"|(?:{'|'.join(f'(?<={cue})' for cue in ('地址', '住址', '住在', '位于', '寄到', '送到', '：', ':'))})\s*"
    rf"(?:{_ROAD}|{_ESTATE})")
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余"
            "杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
NAME_CUE = re.compile(rf"(?:姓名|名字叫|名字是|我叫|他叫|她叫|联系人|收件人)\s*[:：是]?\s*([{SURNAMES}][{HAN}]{{1,2}})")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id_ok(number: str) -> bool:
    """GB 11643: a real birth date and the ISO 7064 MOD 11-2 check character (1 in 11 random numbers pass)."""
    body, check = number[:17], number[17].upper()
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS))
    return "10X98765432"[total % 11] == check


# Traditional -> simplified, one character for one, for every character of the patterns below that has a distinct
# traditional form (OpenCC s2t/s2tw/s2hk of each, checked in tests), plus 繫 (聯繫人) and 衚衕 (胡同).
_TRADITIONAL = str.maketrans(
    "萬東嚴於雲餘內馮劉別區單盧廈臺葉號呂吳園孫寧廣慶張楊棟樓湯灣羅聯肅蘇範蔣許謝譚貴賀賈趙遼鄧鄒鄭鍾錢門閆陸陳陝韋韓顧馬黃龍龔繫衚衕",
    "万东严于云余内冯刘别区单卢厦台叶号吕吴园孙宁广庆张杨栋楼汤湾罗联肃苏范蒋许谢谭贵贺贾赵辽邓邹郑钟钱门闫陆陈陕韦韩顾马黄龙龚系胡同")


def fold(text: str) -> str:
    """What the recognizers see: full-width forms to ASCII and traditional pattern characters to simplified."""
    return fold_width(text).translate(_TRADITIONAL)


def fold_width(text: str) -> str:
    """Full-width ASCII forms (digits, letters, ＋, －) and the ideographic space to ASCII, one char for one."""
    return "".join(chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else " " if c == "\u3000" else c for c in text)


def mobile_ok(match: str) -> bool:
    return len(re.sub(r"\D", "", match)) in (11, 13, 15)
