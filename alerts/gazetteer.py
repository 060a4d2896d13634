"""A built-in multilingual gazetteer: names the encoder does not carry across scripts.

The sentence encoder rates a translation pair of one event at 0.5-0.7 when
its anchors are transliterated names (Kuala Lumpur = 쿠알라룸푸르 = 吉隆坡 =
Куала-Лумпур): it has seen too few of them. These names are facts, not
opinions, so one small list serves every deployment. It is a `Watchlist`
compiled by the real matcher (alerts.matching.engine) next to the user's
watchlists; each matched entry becomes the story concept "gazetteer/<label>".

What is listed, and what is not: capitals and cities that make news in this
field, leaders, organisations, weapon systems and classes, in en/ko/zh/ru.
Not listed: words with a common second meaning in one language (Korean 선전
is both Shenzhen and "propaganda"; 대구 is a city and a fish is fine, it is
rare in this field, but left out too), and anything written for one event.
A wrong entry can only ADD evidence between items that both mention it; the
veto (designators, quantities) and the threshold still decide.
"""

from __future__ import annotations

from alerts.alert_records import Document, Term, Watchlist
from alerts.matching.engine import Matcher, compile_watchlists

GAZETTEER_NAME = "gazetteer"

# label: aliases (en variants, ko, zh, ru). The matcher's `*` accepts any continuation
# of the LAST word only, so inflected Russian phrases are spelled out (nominative,
# genitive, prepositional/accusative: what headlines use).
_ENTRIES: dict[str, tuple[str, ...]] = {
    # capitals and cities
    "Pyongyang": ("평양", "平壤", "Пхеньян*"),
    "Seoul": ("서울", "首尔", "Сеул*"),
    "Tokyo": ("도쿄", "东京", "Токио"),
    "Beijing": ("베이징", "北京", "Пекин*"),
    "Moscow": ("모스크바", "莫斯科", "Москв*"),
    "Kyiv": ("Kiev", "키이우", "키예프", "基辅", "Киев*"),
    "Washington": ("워싱턴", "华盛顿", "Вашингтон*"),
    "Taipei": ("타이베이", "台北", "Тайбэ*"),
    "Hong Kong": ("홍콩", "香港", "Гонконг*"),
    "Kuala Lumpur": ("쿠알라룸푸르", "吉隆坡", "Куала-Лумпур*"),
    "New Delhi": ("Delhi", "뉴델리", "新德里", "Нью-Дели"),
    "Cape Town": ("케이프타운", "开普敦", "Кейптаун*"),
    "Shanghai": ("상하이", "上海", "Шанха*"),
    "Shenzhen": ("深圳", "Шэньчжэн*"),
    "St Petersburg": ("St. Petersburg", "상트페테르부르크", "圣彼得堡", "Петербург*"),
    "Kazan": ("카잔", "喀山", "Казан*"),
    "Vladivostok": ("블라디보스토크", "符拉迪沃斯托克", "Владивосток*"),
    "Busan": ("부산", "釜山", "Пусан*"),
    "Incheon": ("인천", "仁川", "Инчхон*"),
    "Jeju": ("제주", "济州", "Чеджу"),
    "Okinawa": ("오키나와", "冲绳", "Окинав*"),
    "Guam": ("괌", "关岛", "Гуам*"),
    "Kharkiv": ("하르키우", "哈尔科夫", "Харьков*"),
    "Odesa": ("Odessa", "오데사", "敖德萨", "Одесс*"),
    "Crimea": ("크림반도", "克里米亚", "Крым*"),
    "Black Sea": ("흑해", "黑海", "Черное море", "Черного моря", "Черном море"),
    "Taiwan Strait": (
        "대만해협",
        "台湾海峡",
        "Тайваньский пролив",
        "Тайваньского пролива",
        "Тайваньском проливе",
    ),
    "South China Sea": (
        "남중국해",
        "南海",
        "Южно-Китайское море",
        "Южно-Китайского моря",
        "Южно-Китайском море",
    ),
    "Yellow Sea": ("서해", "黄海", "Желтое море", "Желтого моря", "Желтом море"),
    "East Sea": (
        "Sea of Japan",
        "동해",
        "日本海",
        "Японское море",
        "Японского моря",
        "Японском море",
    ),
    "DMZ": (
        "demilitarized zone",
        "MDL",
        "비무장지대",
        "군사분계선",
        "军事分界线",
        "非军事区",
        "демилитаризованная зона",
        "демилитаризованной зоны",
        "демилитаризованной зоне",
    ),
    # leaders and ministers
    "Putin": ("푸틴", "普京", "Путин*"),
    "Kim Jong Un": ("Kim Jong-un", "김정은", "金正恩", "Ким Чен Ын*"),
    "Xi Jinping": ("시진핑", "习近平", "Си Цзиньпин*"),
    "Lee Jae-myung": ("Lee Jae myung", "이재명", "李在明", "Ли Чжэ Мён*"),
    "Zelensky": ("Zelenskyy", "젤렌스키", "泽连斯基", "Зеленск*"),
    "Trump": ("트럼프", "特朗普", "Трамп*"),
    "Lavrov": ("라브로프", "拉夫罗夫", "Лавров*"),
    "Wang Yi": ("왕이", "王毅", "Ван И"),
    # organisations
    "NATO": ("나토", "北约", "НАТО"),
    "UN Security Council": (
        "유엔 안보리",
        "安理会",
        "Совбез ООН",
        "Совбеза ООН",
        "Совбезе ООН",
        "Совет Безопасности ООН",
        "Совета Безопасности ООН",
    ),
    "IAEA": ("국제원자력기구", "国际原子能机构", "МАГАТЭ"),
    "BRICS": ("브릭스", "金砖", "БРИКС"),
    "ASEAN": ("아세안", "东盟", "АСЕАН"),
    "APEC": ("АТЭС", "亚太经合组织", "아시아태평양경제협력체"),
    "SCO": ("Shanghai Cooperation Organisation", "상하이협력기구", "上合组织", "ШОС"),
    "G20": ("주요 20개국", "二十国集团", "Большой двадцатки"),
    "JCS": (
        "Joint Chiefs of Staff",
        "합참",
        "합동참모본부",
        "联合参谋本部",
        "Объединенный комитет начальников штабов",
        "Объединенного комитета начальников штабов",
    ),
    "NIS": ("National Intelligence Service", "국정원", "국가정보원", "国家情报院", "НИС"),
    # weapon systems, platforms, classes
    "ICBM": (
        "intercontinental ballistic missile*",
        "대륙간탄도미사일",
        "洲际弹道导弹",
        "洲际导弹",
        "МБР",
        "межконтинентальн*",
    ),
    "SRBM": (
        "short-range ballistic missile*",
        "단거리 탄도미사일",
        "短程弹道导弹",
        "баллистические ракеты малой дальности",
        "баллистическую ракету малой дальности",
        "баллистических ракет малой дальности",
    ),
    "SLBM": (
        "submarine-launched ballistic missile*",
        "잠수함발사탄도미사일",
        "潜射弹道导弹",
        "баллистическая ракета подводных лодок",
        "баллистической ракеты подводных лодок",
        "БРПЛ",
    ),
    "hypersonic": ("극초음속", "高超音速", "高超声速", "гиперзвуков*"),
    "cruise missile": (
        "cruise missiles",
        "순항미사일",
        "巡航导弹",
        "крылатая ракета",
        "крылатые ракеты",
        "крылатых ракет",
        "крылатую ракету",
        "крылатыми ракетами",
    ),
    "aircraft carrier": ("항공모함", "항모", "航空母舰", "航母", "авианос*"),
    "icebreaker": ("icebreakers", "쇄빙선", "破冰船", "ледокол*"),
    "nuclear submarine": (
        "핵잠수함",
        "核潜艇",
        "атомная подводная лодка",
        "атомной подводной лодки",
        "атомную подводную лодку",
        "АПЛ",
    ),
    "satellite": ("위성", "卫星", "спутник*"),
    "Pantsir": ("판치르", "铠甲", "Панцир*"),
    "S-400": ("С-400",),
    "HIMARS": ("하이마스", "海马斯", "HIMARS"),
    "Patriot": ("패트리엇", "爱国者", "Пэтриот*"),
    "THAAD": ("사드", "萨德", "ТХААД"),
    "Iskander": ("이스칸데르", "伊斯坎德尔", "Искандер*"),
    "Shahed": ("Geran", "샤헤드", "见证者", "Шахед*", "Герань"),
    "defector": ("defects", "defected", "귀순", "탈북", "投韩", "叛逃", "перебежчик*"),
}


def gazetteer_watchlist() -> Watchlist:
    """The gazetteer as a watchlist the real matcher compiles (never alerts:
    it has no recipients and is not stored)."""
    return Watchlist(
        name=GAZETTEER_NAME,
        rules=tuple(Term(label, aliases) for label, aliases in _ENTRIES.items()),
    )


def gazetteer_matcher() -> Matcher:
    """The compiled gazetteer (compile once per process; it is immutable)."""
    return compile_watchlists([gazetteer_watchlist()])


def anchor_concepts(matcher: Matcher, document: Document) -> frozenset[str]:
    """The gazetteer entries `document` names, as story concepts ("gazetteer/<label>"),
    to be united with the item's watchlist concepts before `alerts.stories.features`."""
    return frozenset(f"{m.watchlist}/{term}" for m in matcher.match(document) for term in m.terms)
