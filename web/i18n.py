"""The pages' strings in Chinese (first) and English, and which language a request wants.

`?lang=en` (or `zh`) picks a language and is remembered in the `scanbook_lang` cookie.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.responses import Response

from models.status import LABELS

LANGS = ("zh", "en")
DEFAULT = "zh"
COOKIE = "scanbook_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

# key → (zh, en). Templates call t("key"); the browser modules get them all as JSON.
STRINGS: dict[str, tuple[str, str]] = {
    "app_name": ("扫码登记", "Scanbook"),
    "tagline": ("场所扫码登记 · 健康状态即时核验", "Venue check-in · health status at a glance"),
    "lang_switch": ("English", "中文"),
    "colon": ("：", ": "),
    "home": ("首页", "Home"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出登录", "Sign out"),
    "sign_in_title": ("登录扫码登记", "Sign in to Scanbook"),
    "token_label": ("访问令牌", "Access token"),
    "token_help": ("请输入卫生健康部门发放的访问令牌。",
                   "Enter the access token issued by the health authority."),
    "sign_in_failed": ("令牌无效，请重试。", "That token is not valid. Please try again."),
    "signed_in_as": ("已登录", "Signed in"),
    "signed_in_official": ("已以卫生健康部门身份登录", "Signed in as a health-authority official"),
    "my_card": ("我的健康码", "My health status"),
    "my_venues": ("我登记的场所", "My venues"),
    "no_venues": ("您还不是任何场所的登记员。", "You are not a registrar of any venue yet."),
    "live": ("实时到访", "Live arrivals"),
    "posters": ("登记码海报", "QR posters"),
    "poster": ("海报", "Poster"),
    "loading": ("加载中…", "Loading…"),
    "load_failed": ("加载失败，请刷新重试。", "Could not load. Please refresh."),
    "home_intro": ("到访场所时，用手机扫描门口的登记码即可完成登记，健康状态即时显示。",
                   "At a venue, scan the QR code at the door with your phone to check in; "
                   "your health status shows at once."),
    # the scan page
    "check_in": ("登记", "Check in"),
    "checking_in": ("登记中…", "Checking in…"),
    "logbook": ("登记簿", "Logbook"),
    "venue": ("场所", "Venue"),
    "time": ("时间", "Time"),
    "now": ("当前时间", "Now"),
    "name": ("姓名", "Name"),
    "id_number": ("证件号", "ID"),
    "checked_in": ("登记成功", "Checked in"),
    "already_checked_in": ("1分钟内已登记，无需重复", "Already checked in within the last minute"),
    "sign_in_to_check_in": ("登录后登记", "Sign in to check in"),
    "sign_in_needed": ("请先登录，再进行扫码登记。", "Please sign in to check in."),
    "official_cannot_scan": ("卫生健康部门账户不能扫码登记。",
                             "An official's account cannot check in."),
    "code_invalid_title": ("登记码无效", "Invalid code"),
    "code_invalid": ("该登记码无效，请核对后重新扫码。",
                     "This code is not valid. Please check it and scan again."),
    "state_suspended_title": ("登记簿已暂停", "Logbook suspended"),
    "state_suspended": ("该登记簿已暂停使用，暂时不能在此登记。",
                        "This logbook is suspended; check-in here is not possible for now."),
    "state_revoked_title": ("登记簿已撤销", "Logbook revoked"),
    "state_revoked": ("该登记簿已被撤销，不能在此登记。",
                      "This logbook has been revoked; you cannot check in here."),
    "state_deleted_title": ("登记簿已删除", "Logbook deleted"),
    "state_deleted": ("该登记簿已被删除，登记码已失效。",
                      "This logbook has been deleted; its code no longer works."),
    "reason": ("原因", "Reason"),
    "ask_staff": ("请联系场所工作人员。", "Please ask the venue's staff."),
    "scan_failed": ("登记失败", "Check-in failed"),
    "network_error": ("网络异常，请重试。", "Network problem. Please try again."),
    "minor": ("未成年人", "Minor"),
    # statuses
    "status_green": (LABELS["green"][0], LABELS["green"][1]),
    "status_yellow": (LABELS["yellow"][0], LABELS["yellow"][1]),
    "status_red": (LABELS["red"][0], LABELS["red"][1]),
    "status_popup": (LABELS["popup"][0], LABELS["popup"][1]),
    "popup_travel": ("行程核验", "Travel check"),
    "popup_risk_area": ("风险地区", "Risk area"),
    "popup_hint_travel": ("请核实行程后再入场", "Verify the itinerary before entry"),
    "popup_hint_risk_area": ("请向所在社区报告", "Report to the community"),
    # the poster
    "poster_title": ("扫码登记", "Scan to check in"),
    "poster_step1": ("打开北京健康宝", "Open Beijing Health Kit (北京健康宝)"),
    "poster_step2": ("扫码登记", "Tap “Scan to check in” (扫码登记)"),
    "poster_step3": ("向工作人员出示健康状态", "Show your health status to the staff"),
    "poster_distance": ("请保持一米线距离", "Please keep one metre apart"),
    "print": ("打印海报", "Print poster"),
    "back": ("返回", "Back"),
    # the live page
    "live_title": ("实时到访", "Live arrivals"),
    "enable_sound": ("开启提示音", "Enable sound"),
    "sound_on": ("提示音已开启", "Sound on"),
    "sound_locked": ("提示音未开启：异常到访时将无声音，请点“开启提示音”。",
                     "Sound is off: abnormal arrivals will be silent. Tap “Enable sound”."),
    "test_sound": ("试听", "Test"),
    "total": ("今日到访", "Arrivals today"),
    "abnormal": ("异常", "Abnormal"),
    "connected": ("已连接", "Connected"),
    "connecting": ("连接中…", "Connecting…"),
    "reconnecting": ("连接中断，正在重连…", "Connection lost, reconnecting…"),
    "disconnected": ("已断开", "Disconnected"),
    "no_arrivals": ("暂无到访记录。", "No arrivals yet."),
    "alert_title": ("异常状态到访", "Abnormal arrival"),
    "acknowledge": ("已确认", "Acknowledge"),
    "via_proxy": ("代登记", "By proxy"),
    "logbook_state": ("登记簿状态变更", "Logbook state changed"),
    "banner_suspended": ("登记簿「{label}」已暂停使用", "Logbook “{label}” is suspended"),
    "banner_revoked": ("登记簿「{label}」已被撤销", "Logbook “{label}” has been revoked"),
    "banner_deleted": ("登记簿「{label}」已删除", "Logbook “{label}” has been deleted"),
    "dismiss": ("知道了", "Dismiss"),
    "closed_4401": ("登录已失效，请重新登录。", "Your session has ended; please sign in again."),
    "closed_4403": ("您不是该场所的登记员。", "You are not a registrar of this venue."),
    "closed_4404": ("场所不存在。", "This venue does not exist."),
    # errors
    "forbidden_title": ("无权访问", "Access denied"),
    "forbidden_registrar": ("仅限该场所的登记员查看。",
                            "Only this venue's registrars may view this."),
    "not_found_title": ("页面不存在", "Not found"),
    "not_found_venue": ("场所不存在。", "This venue does not exist."),
    "not_found_logbook": ("登记簿不存在。", "This logbook does not exist."),
    "citizens_only": ("请使用居民账户登录。", "Please sign in with a citizen's account."),
}

def lang_of(conn: HTTPConnection) -> str:
    """The language asked for in the query (?lang=), else the remembered cookie, else Chinese."""
    asked = conn.query_params.get("lang")
    if asked in LANGS:
        return asked
    remembered = conn.cookies.get(COOKIE)
    return remembered if remembered in LANGS else DEFAULT


def remember(conn: HTTPConnection, response: Response) -> None:
    """Store a language picked with ?lang= in the cookie."""
    asked = conn.query_params.get("lang")
    if asked in LANGS and conn.cookies.get(COOKIE) != asked:
        response.set_cookie(COOKIE, asked, max_age=COOKIE_MAX_AGE, samesite="lax")


def translator(lang: str):
    """t(key) in the given language; an unknown key shows itself, so a typo is visible."""
    index = LANGS.index(lang)

    def t(key: str) -> str:
        pair = STRINGS.get(key)
        return pair[index] if pair else key

    return t


def js_strings(lang: str) -> dict[str, str]:
    """Every string in one language, for the browser modules (a few kilobytes)."""
    index = LANGS.index(lang)
    return {key: pair[index] for key, pair in STRINGS.items()}
