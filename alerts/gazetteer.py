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
veto (designators, quantities) and the threshold still decide. Since the
fifth round a gazetteer place also feeds the place veto (alerts.places), so a
spurious hit can also split: hence the boundaries below.

Boundaries (the gazetteer's own, stricter than a watchlist's). Users'
Hangul/Han terms match inside words (CONTRACT.md); a place or person name
must not: 평양 (Pyongyang) is inside 태평양 (Pacific), 동해 (East Sea) inside
이동해 ("moving"), 왕이 (Wang Yi) inside 국왕이 ("the king"). Korean attaches
particles at the END of a word (평양에서, 평양의, 평양발), so a Hangul spelling
counts only at the START of a Hangul run (`_at_hangul_start`), except for the
class nouns of `_INSIDE`, which compound (정찰위성, 핵항모, 신형순항미사일).
A compound that starts with a name keeps it (평양냉면, 서울대, 인천공항: each
is in or of that place). Chinese has no word boundaries at all, so Han
spellings keep matching inside text and the known longer words that contain
one are listed in `_NOT_IN` (东京都 is Tokyo, not 京都 Kyoto; 有关岛屿 are
"the islands concerned", not 关岛 Guam). Filtered after the real matcher, so
watchlist matching is unchanged.
"""

from __future__ import annotations

import re

from alerts.alert_records import Document, Hit, Term, Watchlist
from alerts.matching.engine import Matcher, compile_watchlists
from alerts.matching.text_keys import HANGUL_CLASS, normalize_text

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

# Third round (issue #12): systematic lists of the field's names rather than one
# event's: regions and cities of Japan, China, the two Koreas, Russia and Ukraine
# that make news, other capitals and hubs, leaders and ministers, organisations and
# companies, space programmes and weapon systems, each in en/ko/zh/ru. Left out:
# spellings that are ordinary words in one language (Korean 나라 "country" for Nara,
# 사천 for Sacheon, Russian stems like Нар* that start common words).
_MORE: dict[str, tuple[str, ...]] = {
    # Japan
    "Hokkaido": ("홋카이도", "北海道", "Хоккайдо"),
    "Miyagi": ("미야기", "宫城", "Мияги"),
    "Fukushima": ("후쿠시마", "福岛", "Фукусим*"),
    "Osaka": ("오사카", "大阪", "Осак*"),
    "Kyoto": ("교토", "京都", "Киото"),
    "Nara": ("奈良", "Нара", "Наре"),
    "Hiroshima": ("히로시마", "广岛", "Хиросим*"),
    "Nagasaki": ("나가사키", "长崎", "Нагасаки"),
    "Kyushu": ("규슈", "九州", "Кюсю"),
    "Noto": ("노토", "能登", "Ното"),
    "Niigata": ("니가타", "新潟", "Ниигат*"),
    "Aomori": ("아오모리", "青森", "Аомори"),
    "Yokosuka": ("요코스카", "横须贺", "Йокосук*"),
    # China
    "Sichuan": ("쓰촨", "四川", "Сычуан*"),
    "Hainan": ("하이난", "海南", "Хайнан*"),
    "Sanya": ("싼야", "三亚", "Санья"),
    "Guangdong": ("광둥", "广东", "Гуандун*"),
    "Guangzhou": ("광저우", "广州", "Гуанчжоу"),
    "Fujian": ("푸젠", "福建", "Фуцзян*"),
    "Xinjiang": ("신장위구르", "新疆", "Синьцзян*"),
    "Tibet": ("티베트", "西藏", "Тибет*"),
    "Yunnan": ("윈난", "云南", "Юньнан*"),
    "Shandong": ("산둥", "山东", "Шаньдун*"),
    "Qingdao": ("칭다오", "青岛", "Циндао"),
    "Dalian": ("다롄", "大连", "Далян*"),
    "Wuhan": ("우한", "武汉", "Ухан*"),
    "Chongqing": ("충칭", "重庆", "Чунцин*"),
    "Tianjin": ("톈진", "天津", "Тяньцзин*"),
    "Harbin": ("하얼빈", "哈尔滨", "Харбин*"),
    "Jiuquan": ("주취안", "酒泉", "Цзюцюань"),
    "Wenchang": ("원창", "文昌", "Вэньчан*"),
    "Inner Mongolia": ("네이멍구", "内蒙古", "Внутренняя Монголия", "Внутренней Монголии"),
    # South Korea
    "Gyeonggi": ("경기도", "京畿道", "Кёнги"),
    "Gangwon": ("강원", "江原", "Канвон*"),
    "Daejeon": ("대전시", "大田", "Тэджон*"),
    "Gwangju": ("광주시", "光州", "Кванджу"),
    "Ulsan": ("울산", "蔚山", "Ульсан*"),
    "Pohang": ("포항", "浦项", "Пхохан*"),
    "Pyeongtaek": ("평택", "平泽", "Пхёнтхэк*"),
    "Gimpo": ("김포", "金浦", "Кимпхо"),
    "Goheung": ("고흥", "高兴郡", "Кохын*", "Naro Space Center", "나로우주센터", "罗老"),
    "Sejong": ("세종시", "世宗市", "Седжон*"),
    # North Korea
    "Sohae": (
        "Tongchang-ri",
        "Dongchang-ri",
        "서해위성발사장",
        "동창리",
        "东仓里",
        "西海卫星发射场",
        "Сохэ",
        "Тончханни",
    ),
    "Yongbyon": ("영변", "宁边", "Йонбён*"),
    "Sinpo": ("신포", "新浦", "Синпхо"),
    "Wonsan": ("원산시", "원산갈마", "元山", "Вонсан*"),
    "Kaesong": ("개성공단", "개성시", "开城", "Кэсон*"),
    "Sunan": ("순안", "顺安", "Сунан*"),
    "KCNA": ("Korean Central News Agency", "조선중앙통신", "朝中社", "ЦТАК"),
    "Kim Yo Jong": ("Kim Yo-jong", "김여정", "金与正", "Ким Ё Чжон*"),
    "Choe Son Hui": ("최선희", "崔善姬", "Чхве Сон Хи"),
    "Hwasong": ("Hwasong-*", "화성-", "화성포", "火星-", "Хвасон*"),
    # Russia
    "Novosibirsk": ("노보시비르스크", "新西伯利亚", "Новосибирск*"),
    "Yekaterinburg": ("예카테린부르크", "叶卡捷琳堡", "Екатеринбург*"),
    "Kamchatka": ("캄차카", "堪察加", "Камчатк*"),
    "Sakhalin": ("사할린", "萨哈林", "Сахалин*"),
    "Khabarovsk": ("하바롭스크", "哈巴罗夫斯克", "Хабаровск*"),
    "Murmansk": ("무르만스크", "摩尔曼斯克", "Мурманск*"),
    "Kaliningrad": ("칼리닌그라드", "加里宁格勒", "Калининград*"),
    "Kursk": ("쿠르스크", "库尔斯克", "Курск*"),
    "Belgorod": ("벨고로드", "别尔哥罗德", "Белгород*"),
    "Bryansk": ("브랸스크", "布良斯克", "Брянск*"),
    "Rostov": ("로스토프", "罗斯托夫", "Ростов*"),
    "Krasnodar": ("크라스노다르", "克拉斯诺达尔", "Краснодар*"),
    "Sevastopol": ("세바스토폴", "塞瓦斯托波尔", "Севастопол*"),
    "Novorossiysk": ("노보로시스크", "新罗西斯克", "Новороссийск*"),
    "Baikonur": ("바이코누르", "拜科努尔", "Байконур*"),
    "Vostochny": (
        "보스토치니",
        "东方航天发射场",
        "космодром Восточный",
        "космодрома Восточный",
        "космодроме Восточный",
    ),
    "Plesetsk": ("플레세츠크", "普列谢茨克", "Плесецк*"),
    # Ukraine
    "Lviv": ("르비우", "리비우", "利沃夫", "Львов*", "Львів"),
    "Zaporizhzhia": ("Zaporizhia", "Zaporozhye", "자포리자", "자포리아", "扎波罗热", "Запорож*"),
    "Dnipro": ("Dnipropetrovsk", "드니프로", "第聂伯", "Днепр*"),
    "Kherson": ("헤르손", "赫尔松", "Херсон*"),
    "Donetsk": ("도네츠크", "顿涅茨克", "Донецк*", "Донбасс*", "Donbas", "돈바스", "顿巴斯"),
    "Luhansk": ("Lugansk", "루한스크", "卢甘斯克", "Луганск*"),
    "Pokrovsk": ("포크로우스크", "포크롭스크", "波克罗夫斯克", "Покровск*"),
    "Sumy": ("苏梅", "Сумы", "Сумах", "Сумской"),
    "Mykolaiv": ("Nikolaev", "미콜라이우", "尼古拉耶夫", "Николаев*"),
    "Chernihiv": ("체르니히우", "切尔尼戈夫", "Чернигов*"),
    "Poltava": ("폴타바", "波尔塔瓦", "Полтав*"),
    "Kryvyi Rih": (
        "Kryvyi Rig",
        "Krivoy Rog",
        "크리비리흐",
        "克里维里赫",
        "Кривой Рог",
        "Кривом Роге",
        "Кривого Рога",
        "Кривий Ріг",
    ),
    "Zhytomyr": ("지토미르", "日托米尔", "Житомир*"),
    "Vinnytsia": ("Vinnitsa", "빈니차", "文尼察", "Винниц*"),
    "Kremenchuk": ("Kremenchug", "크레멘추크", "克列缅丘格", "Кременчуг*"),
    "Ternopil": ("테르노필", "捷尔诺波尔", "Тернопол*"),
    "Cherkasy": ("체르카시", "切尔卡瑟", "Черкасс*"),
    "Kramatorsk": ("크라마토르스크", "克拉马托尔斯克", "Краматорск*"),
    "Kupiansk": ("Kupyansk", "쿠피안스크", "库皮扬斯克", "Купянск*"),
    "Bakhmut": ("Artemovsk", "바흐무트", "巴赫穆特", "Бахмут*", "Артемовск*"),
    "Mariupol": ("마리우폴", "马里乌波尔", "Мариупол*"),
    "Melitopol": ("멜리토폴", "梅利托波尔", "Мелитопол*"),
    "Nikopol": ("니코폴", "尼科波尔", "Никопол*"),
    # Russian cities that make news for strikes on refineries, depots and airfields
    # (fifth round: two refinery strikes of one kind told apart only by the city).
    # Left out: Ufa (Korean 우파 = "the right"), Engels (the philosopher), Oryol
    # (Russian орел = eagle), Grozny (грозный = "formidable").
    "Ryazan": ("랴잔", "梁赞", "Рязан*"),
    "Volgograd": ("볼고그라드", "伏尔加格勒", "Волгоград*"),
    "Saratov": ("사라토프", "萨拉托夫", "Саратов*"),
    "Samara": ("사마라", "萨马拉", "Самара", "Самаре", "Самары", "Самарск*"),
    "Syzran": ("시즈란", "塞兹兰", "Сызран*"),
    "Tuapse": ("투압세", "图阿普谢", "Туапсе"),
    "Voronezh": ("보로네시", "보로네즈", "沃罗涅日", "Воронеж*"),
    "Smolensk": ("스몰렌스크", "斯摩棱斯克", "Смоленск*"),
    "Yaroslavl": ("야로슬라블", "雅罗斯拉夫尔", "Ярославл*"),
    "Nizhny Novgorod": (
        "니즈니노브고로드",
        "下诺夫哥罗德",
        "Нижний Новгород",
        "Нижнем Новгороде",
        "Нижнего Новгорода",
        "Нижегородск*",
    ),
    "Kstovo": ("크스토보", "克斯托沃", "Кстов*"),
    "Perm": ("페름", "彼尔姆", "Пермь", "Перми", "Пермск*"),
    "Orenburg": ("오렌부르크", "奥伦堡", "Оренбург*"),
    "Kirishi": ("키리시", "基里希", "Кириш*"),
    "Ust-Luga": ("우스트루가", "乌斯季卢加", "Усть-Луг*"),
    "Astrakhan": ("아스트라한", "阿斯特拉罕", "Астрахан*"),
    "Taganrog": ("타간로그", "塔甘罗格", "Таганрог*"),
    "Lipetsk": ("리페츠크", "利佩茨克", "Липецк*"),
    "Tambov": ("탐보프", "坦波夫", "Тамбов*"),
    "Cheboksary": ("체복사리", "切博克萨雷", "Чебоксар*"),
    "Sochi": ("소치", "索契", "Сочи"),
    "Chelyabinsk": ("첼랴빈스크", "车里雅宾斯克", "Челябинск*"),
    "Omsk": ("옴스크", "鄂木斯克", "Омск*"),
    "Krasnoyarsk": ("크라스노야르스크", "克拉斯诺亚尔斯克", "Красноярск*"),
    "Irkutsk": ("이르쿠츠크", "伊尔库茨克", "Иркутск*"),
    # other capitals and hubs
    "Istanbul": ("이스탄불", "伊斯坦布尔", "Стамбул*"),
    "Ankara": ("앙카라", "安卡拉", "Анкар*"),
    "Tehran": ("테헤란", "德黑兰", "Тегеран*"),
    "Gaza": ("가자지구", "加沙", "сектор Газа", "сектора Газа", "секторе Газа"),
    "Riyadh": ("리야드", "利雅得", "Эр-Рияд*"),
    "Abu Dhabi": ("아부다비", "阿布扎比", "Абу-Даби"),
    "Doha": ("多哈", "Доха", "Дохе"),
    "Geneva": ("제네바", "日内瓦", "Женев*"),
    "Brussels": ("브뤼셀", "布鲁塞尔", "Брюссел*"),
    "Paris": ("巴黎", "Париж*"),
    "London": ("런던", "伦敦", "Лондон*"),
    "Berlin": ("베를린", "柏林", "Берлин*"),
    "Warsaw": ("바르샤바", "华沙", "Варшав*"),
    "Minsk": ("민스크", "明斯克", "Минск*"),
    "Tallinn": ("탈린", "塔林", "Таллин*"),
    "Astana": ("아스타나", "阿斯塔纳", "Астан*"),
    "Ulaanbaatar": ("Ulan Bator", "울란바토르", "乌兰巴托", "Улан-Батор*"),
    "Hanoi": ("하노이", "河内", "Ханой*"),
    "Manila": ("마닐라", "马尼拉", "Манил*"),
    "Jakarta": ("자카르타", "雅加达", "Джакарт*"),
    "Bangkok": ("曼谷", "Бангкок*"),
    "Singapore": ("싱가포르", "新加坡", "Сингапур*"),
    "Mindanao": ("민다나오", "棉兰老", "Минданао"),
    "Hawaii": ("하와이", "夏威夷", "Гавай*"),
    "Alaska": ("알래스카", "阿拉斯加", "Аляск*"),
    "Arizona": ("애리조나", "亚利桑那", "Аризон*"),
    "Texas": ("텍사스", "得克萨斯", "Техас*"),
    "Davos": ("다보스", "达沃斯", "Давос*"),
    # leaders, ministers, officials
    "Modi": ("모디", "莫迪", "Моди"),
    "Erdogan": ("Erdoğan", "에르도안", "埃尔多安", "Эрдоган*"),
    "Shoigu": ("쇼이구", "绍伊古", "Шойгу"),
    "Belousov": ("벨로우소프", "别洛乌索夫", "Белоусов*"),
    "Peskov": ("페스코프", "佩斯科夫", "Песков*"),
    "Medvedev": ("메드베데프", "梅德韦杰夫", "Медведев*"),
    "Grossi": ("그로시", "格罗西", "Гросси"),
    "Guterres": ("구테흐스", "古特雷斯", "Гутерриш*"),
    "Rutte": ("뤼터", "吕特", "Рютте"),
    "Ishiba": ("이시바", "石破茂", "Исиб*"),
    "Takaichi": ("다카이치", "高市早苗", "Такаити"),
    "Lai Ching-te": ("라이칭더", "赖清德", "Лай Циндэ"),
    "Marcos": ("마르코스", "小马科斯", "Маркос*"),
    "Prabowo": ("프라보워", "普拉博沃", "Прабово"),
    "Macron": ("마크롱", "马克龙", "Макрон*"),
    "Starmer": ("스타머", "斯塔默", "Стармер*"),
    "Merz": ("메르츠", "默茨", "Мерц*"),
    "Rubio": ("루비오", "鲁比奥", "Рубио"),
    "Hegseth": ("헤그세스", "赫格塞思", "Хегсет*"),
    "Vance": ("万斯", "Вэнс*"),
    "Witkoff": ("위트코프", "威特科夫", "Уиткофф*"),
    "Umerov": ("우메로우", "乌梅罗夫", "Умеров*"),
    "Li Qiang": ("리창 총리", "李强", "Ли Цян*"),
    "Dong Jun": ("둥쥔", "董军", "Дун Цзюнь"),
    "Lukashenko": ("루카셴코", "卢卡申科", "Лукашенко"),
    "Netanyahu": ("네타냐후", "内塔尼亚胡", "Нетаньяху"),
    # organisations, companies
    "EU": ("European Union", "유럽연합", "欧盟", "Евросоюз*", "ЕС"),
    "OPEC": ("석유수출국기구", "欧佩克", "ОПЕК*"),
    "WHO": ("World Health Organization", "세계보건기구", "世界卫生组织", "ВОЗ"),
    "Federal Reserve": ("연준", "연방준비제도", "美联储", "ФРС"),
    "Bank of Korea": ("한국은행", "한은", "韩国央行", "韩国银行", "Банк Кореи"),
    "Bank of Japan": ("BOJ", "일본은행", "日本央行", "日本银行", "Банк Японии"),
    "ECB": ("European Central Bank", "유럽중앙은행", "欧洲央行", "ЕЦБ"),
    "People's Bank of China": (
        "PBOC",
        "인민은행",
        "中国人民银行",
        "Народный банк Китая",
        "Народного банка Китая",
    ),
    "Roscosmos": ("로스코스모스", "俄罗斯国家航天集团", "Роскосмос*"),
    "Rosatom": ("로사톰", "俄罗斯国家原子能公司", "Росатом*"),
    "Gazprom": ("가스프롬", "俄气", "Газпром*"),
    "Aeroflot": ("아에로플로트", "俄罗斯航空", "Аэрофлот*"),
    "TSMC": ("Taiwan Semiconductor", "台积电", "台湾积体电路"),
    "Samsung Electronics": ("삼성전자", "三星电子"),
    "SK hynix": ("SK하이닉스", "SK海力士", "SK Hynix"),
    "Hanwha": ("한화에어로스페이스", "한화", "韩华", "Ханвха"),
    "KAI": ("Korea Aerospace Industries", "한국항공우주산업", "韩国航空航天工业"),
    "LIG Nex1": ("LIG넥스원", "LIG Nex1"),
    "Hyundai Rotem": ("현대로템", "现代罗特姆", "Hyundai Rotem"),
    "Nvidia": ("엔비디아", "英伟达", "Nvidia"),
    "Huawei": ("화웨이", "华为", "Huawei", "Хуавэй"),
    "SpaceX": ("스페이스X", "太空探索技术公司", "SpaceX"),
    "JAXA": ("일본우주항공연구개발기구", "日本宇宙航空研究开发机构", "JAXA"),
    "Seventh Fleet": ("7th Fleet", "제7함대", "第七舰队", "Седьмой флот", "Седьмого флота"),
    "Eastern Theater Command": ("동부전구", "东部战区"),
    # space programmes and vehicles
    "Shenzhou": ("선저우", "神舟", "Шэньчжоу*"),
    "Tiangong": ("톈궁", "天宫", "Тяньгун*"),
    "Chang'e": ("Change-", "창어", "嫦娥", "Чанъэ*"),
    "Long March": ("창정", "长征", "Чанчжэн*"),
    "Starship": ("스타십", "星舰", "Starship"),
    "Soyuz": ("소유스", "联盟号", "Союз-*"),
    "Progress MS": ("프로그레스", "进步号", "Прогресс МС*"),
    "Nuri": ("누리호", "世界号", "«Нури»", "Нури"),
    "H3": ("H3 로켓", "H3火箭", "H3"),
    # weapon systems and platforms
    "Oreshnik": ("오레시니크", "榛树", "Орешник*"),
    "Kinzhal": ("킨잘", "匕首", "Кинжал*"),
    "Sarmat": ("사르마트", "萨尔马特", "Сармат*"),
    "Tomahawk": ("토마호크", "战斧", "Томагавк*"),
    "ATACMS": ("에이태큼스", "陆军战术导弹", "ATACMS"),
    "Storm Shadow": ("스톰섀도", "风暴阴影", "Storm Shadow"),
    "Taurus": ("타우러스", "金牛座导弹", "Taurus"),
    "KF-21": ("Boramae", "보라매", "KF-21"),
    "FA-50": ("FA-50", "FA-50M", "FA-50PL"),
    "K9": ("K9 Thunder", "K9 자주포", "K9自行榴弹炮", "K9"),
    "K2": ("K2 Black Panther", "K2 전차", "K2坦克", "K2"),
    "Cheongung": ("천궁", "天弓", "Cheongung*", "KM-SAM"),
    "L-SAM": ("L-SAM",),
    "S-500": ("С-500", "Prometey", "Прометей"),
    "J-20": ("歼-20", "J-20", "Дж-20"),
    "J-35": ("歼-35", "J-35"),
    "J-10C": ("歼-10C", "J-10C"),
    "Su-57": ("Су-57", "Su-57", "苏-57"),
    "B-1B": ("B-1B", "B-1B랜서", "B-1B轰炸机"),
    "B-52": ("B-52", "B-52H"),
    "F-35": ("F-35", "F-35A", "F-35B"),
    "Type 076": ("076型", "076형", "проекта 076", "типа 076"),
}
_ENTRIES.update(_MORE)


# Entries whose Hangul spellings also count inside a word: class nouns that Korean
# compounds with a modifier in front (정찰위성, 군사정찰위성, 핵항모, 핵항공모함,
# 원자력쇄빙선, 전략순항미사일, 신형극초음속, 재탈북). Every other Hangul spelling
# (places, people, organisations, named systems) counts only at a Hangul word start.
_INSIDE: frozenset[str] = frozenset(
    {
        "ICBM",
        "SRBM",
        "SLBM",
        "hypersonic",
        "cruise missile",
        "aircraft carrier",
        "icebreaker",
        "nuclear submarine",
        "satellite",
        "defector",
        "DMZ",
    }
)

# Longer words that contain a spelling and mean something else: a hit inside one
# of them is not the entry. Mostly Chinese (no word boundaries to check), plus
# Korean words that START with a place name (the start rule lets them through).
_NOT_IN: dict[str, tuple[str, ...]] = {
    "京都": ("东京都",),  # Tokyo Metropolis
    "关岛": ("有关岛", "相关岛"),  # "the islands concerned"
    "能登": ("能登上", "能登陆", "能登顶", "能登场", "能登记"),  # "can board/land/…"
    "大田": ("大田区",),  # Ōta ward, Tokyo
    "南海": ("南海海槽", "南海トラフ"),  # Nankai Trough (Japan), not the South China Sea
    "海南": ("上海南", "渤海南", "黄海南", "东海南"),  # "south of Shanghai/the Bohai…"
    "宫城": ("故宫城",),  # the Forbidden City's walls
    "부산": ("부산물",),  # "by-product"
    # The Shanghai Cooperation Organisation is not news from Shanghai (a site of
    # the place veto, alerts.places): "SCO defence ministers meet in Qingdao".
    "上海": ("上海合作",),
    "상하이": ("상하이협력", "상하이 협력"),
    "Shanghai": ("Shanghai Cooperation",),
    "Шанха*": ("Шанхайской организац", "Шанхайская организац", "Шанхайскую организац"),
}

_HANGUL_RE = re.compile(f"[{HANGUL_CLASS}]")


def _at_hangul_start(text: str, start: int) -> bool:
    """True when position `start` of `text` does not continue a Hangul word."""
    return start == 0 or not _HANGUL_RE.match(text[start - 1])


def _inside_longer_word(text: str, hit: Hit) -> bool:
    """True when the hit lies inside one of its spelling's `_NOT_IN` words."""
    stem = hit.spelling.rstrip("*").lower()
    for word in _NOT_IN.get(hit.spelling, ()):
        begin = hit.start - word.lower().find(stem)
        if begin >= 0 and text[begin : begin + len(word)].lower() == word.lower():
            return True
    return False


def _counts(label: str, hit: Hit, text: str) -> bool:
    """Whether a hit of the real matcher is the entry by the gazetteer's boundaries."""
    named = bool(_HANGUL_RE.match(hit.spelling)) and label not in _INSIDE
    if named and not _at_hangul_start(text, hit.start):
        return False
    return not _inside_longer_word(text, hit)


def gazetteer_watchlist() -> Watchlist:
    """The gazetteer as a watchlist the real matcher compiles (never alerts:
    it has no recipients and is not stored)."""
    return Watchlist(
        name=GAZETTEER_NAME,
        rules=tuple(Term(label, aliases) for label, aliases in _ENTRIES.items()),
    )


def gazetteer_matcher() -> Matcher:
    """The compiled gazetteer (compile once per process; it is immutable).
    On pyahocorasick: it scans a story's title and lead as fast as Hyperscan
    and compiles in 0.02 s instead of 2.7 s, which every `crawl` paid."""
    return compile_watchlists([gazetteer_watchlist()], "aho")


def anchor_concepts(matcher: Matcher, document: Document) -> frozenset[str]:
    """The gazetteer entries `document` names, as story concepts ("gazetteer/<label>"),
    to be united with the item's watchlist concepts before `alerts.stories.features`.

    A hit counts only by the gazetteer's boundaries (module docstring): a Hangul
    name at the start of a Hangul word, no spelling inside a listed longer word."""
    out: set[str] = set()
    texts: dict[str, str] = {}
    for m in matcher.match(document):
        for hit in m.hits:
            concept = f"{m.watchlist}/{hit.rule}"
            if concept in out:
                continue
            text = texts.get(hit.field)
            if text is None:
                text = texts[hit.field] = normalize_text(getattr(document, hit.field))
            if _counts(hit.rule, hit, text):
                out.add(concept)
    return frozenset(out)
