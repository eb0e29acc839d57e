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


# --- the officials' console and the wallboard (web/pages_official.py) ----------------------
# Kept apart from STRINGS so the phone pages do not carry them; the console's pages get both.
CONSOLE_STRINGS: dict[str, tuple[str, str]] = {
    "adm_console": ("卫生健康部门工作台", "Health-authority console"),
    "adm_console_intro": ("批量变更健康状态、密接追踪、查询与审计、违规处理、公告与留言。",
                          "Bulk status changes, exposure tracing, audited traces, violations, "
                          "announcements and citizens' messages."),
    "adm_nav_label": ("工作台导航", "Console navigation"),
    "adm_nav_home": ("概览", "Overview"),
    "adm_nav_status_changes": ("批量变更状态", "Status changes"),
    "adm_nav_exposures": ("场所密接追踪", "Exposure tracing"),
    "adm_nav_jobs": ("任务进度", "Jobs"),
    "adm_nav_trace": ("个案查询", "Trace a person"),
    "adm_nav_audit": ("审计日志", "Audit log"),
    "adm_nav_violations": ("违规处理", "Violations"),
    "adm_nav_notices": ("发布公告", "Announcements"),
    "adm_nav_messages": ("居民留言", "Citizens' messages"),
    "adm_nav_wallboard": ("人流监测大屏", "Crowding wallboard"),
    "adm_tile_status_changes": ("上传 CSV 文件，逐行查看处理结果",
                                "Upload a CSV file; see each row's result"),
    "adm_tile_exposures": ("某场所某时段到访者统一赋码", "Everyone at a venue in a time window"),
    "adm_tile_trace": ("查看完整身份与到访记录（留痕审计）",
                       "Full identity and check-ins (audited)"),
    "adm_tile_violations": ("生效中的违规：{n} 起", "Violations in force: {n}"),
    "adm_tile_notices": ("推送给所有居民", "Pushed to every citizen"),
    "adm_tile_messages": ("共 {n} 条留言", "{n} messages"),
    "adm_tile_audit": ("谁在何时因何查看了谁", "Who looked at whom, when and why"),
    "adm_tile_wallboard": ("指挥中心全屏实时监测", "Full-screen live board for the control room"),
    "adm_officials_only": ("仅限卫生健康部门工作人员使用。",
                           "For health-authority officials only."),
    "adm_sign_in_official": ("以工作人员身份登录", "Sign in as an official"),
    "adm_session_ended": ("登录已失效，请重新登录。",
                          "Your session has ended; please sign in again."),
    "adm_who": ("经办人", "Acting official"),
    "adm_who_name": ("姓名", "Name"),
    "adm_who_office": ("单位", "Office"),
    "adm_who_help": ("随每次操作记入审计日志（保存在本浏览器）。",
                     "Recorded in the audit log with each action (kept in this browser)."),
    "adm_who_col": ("经办", "By"),
    # jobs
    "adm_recent_jobs": ("最近的任务", "Recent jobs"),
    "adm_all_jobs": ("全部任务", "All jobs"),
    "adm_jobs_intro": ("批量变更、密接追踪与违规处理都在后台任务中执行。",
                       "Status changes, exposures and violations run as background jobs."),
    "adm_job": ("任务", "Job"),
    "adm_batch": ("批次", "Batch"),
    "adm_kind": ("类型", "Kind"),
    "adm_kind_status_changes": ("批量变更状态", "Status changes"),
    "adm_kind_exposure": ("场所密接追踪", "Exposure"),
    "adm_kind_violation": ("违规停用", "Violation"),
    "adm_kind_lift": ("解除违规", "Lift"),
    "adm_actor": ("发起人", "Requested by"),
    "adm_created": ("时间", "Created"),
    "adm_state": ("状态", "State"),
    "adm_outcome": ("结果", "Outcome"),
    "adm_outcome_changes": ("共 {total} 行，生效 {applied}，问题 {errors}",
                            "{total} rows, {applied} applied, {errors} problems"),
    "adm_outcome_logbooks": ("登记簿 {n} 个", "{n} logbooks"),
    "adm_no_jobs": ("暂无任务。", "No jobs yet."),
    "adm_job_progress": ("任务进度", "Job progress"),
    "adm_job_open": ("打开任务页", "Open the job's page"),
    "adm_job_queued": ("排队中", "Queued"),
    "adm_job_started": ("执行中", "Running"),
    "adm_job_finished": ("已完成", "Finished"),
    "adm_job_failed": ("失败", "Failed"),
    "adm_job_unknown": ("查询中…", "Checking…"),
    "adm_job_pending": ("进行中", "In progress"),
    "adm_job_not_found": ("找不到该任务。", "No such job."),
    "adm_progress": ("已处理 {done} / {total}", "{done} of {total} done"),
    "adm_sum_total": ("总数", "Total"),
    "adm_sum_applied": ("已生效", "Applied"),
    "adm_sum_unchanged": ("状态未变", "Unchanged"),
    "adm_sum_skipped": ("已跳过", "Skipped"),
    "adm_sum_revoked_logbooks": ("撤销登记簿", "Logbooks revoked"),
    "adm_sum_ended_duties": ("终止登记员职责", "Registrar duties ended"),
    "adm_sum_logbooks": ("登记簿", "Logbooks"),
    "adm_sum_errors": ("有问题的行", "Rows with problems"),
    "adm_older": ("更早的记录 →", "Older →"),
    # status changes (CSV)
    "adm_upload_intro": ("上传 CSV 文件批量变更健康状态。提交后可逐行查看结果："
                         "无效或查无此人的身份证号会逐行标出。",
                         "Upload a CSV file to change statuses in bulk. Each row's result "
                         "shows after the job runs: invalid and unknown ID numbers are marked "
                         "row by row."),
    "adm_csv_format": ("文件格式", "File format"),
    "adm_csv_format_help": ("每行一人：身份证号、状态（green/yellow/red/popup 或 "
                            "未见异常/居家观察/集中观察/弹窗）、原因、弹窗类型（仅弹窗："
                            "travel 或 risk_area）。可带表头；支持 UTF-8 与 GBK 编码。",
                            "One person a row: ID number, status (green/yellow/red/popup, or "
                            "the Chinese labels), reason, popup kind (popup only: travel or "
                            "risk_area). A header row is optional; UTF-8 or GBK."),
    "adm_csv_template": ("下载模板", "Download a template"),
    "adm_csv_file": ("CSV 文件", "CSV file"),
    "adm_csv_file_help": ("最多 100,000 行。", "At most 100,000 rows."),
    "adm_csv_empty": ("文件中没有数据行。", "The file has no data rows."),
    "adm_csv_too_many": ("超过 {n} 行，请拆分后上传。", "More than {n} rows: split the file."),
    "adm_rows_read": ("已读取 {file}：{n} 行", "Read {file}: {n} rows"),
    "adm_preview": ("前 10 行预览", "First 10 rows"),
    "adm_line": ("文件行号", "Line"),
    "adm_row": ("行", "Row"),
    "adm_rows": ("行数", "Rows"),
    "adm_new_status": ("新状态", "New status"),
    "adm_submit_changes": ("提交变更", "Submit changes"),
    "adm_row_results": ("逐行结果", "Row by row"),
    "adm_row_errors": ("有问题的行", "Rows with problems"),
    "adm_rows_summary": ("处理成功 {ok} 行，有问题 {bad} 行",
                         "{ok} rows done, {bad} with problems"),
    "adm_only_problems": ("只看有问题的行", "Only rows with problems"),
    "adm_rows_more": ("另有 {n} 行未列出。", "{n} more rows not listed."),
    "adm_result": ("结果", "Result"),
    "adm_row_ok": ("✓ 已处理", "✓ Done"),
    "adm_err_not_found": ("查无此人", "Unknown ID number"),
    "adm_err_invalid_id_number": ("身份证号无效", "Invalid ID number"),
    "adm_err_validation_error": ("数据有误", "Invalid row"),
    "adm_err_conflict": ("重复", "Repeated"),
    # exposures
    "adm_exposure_intro": ("在所选时段内到访该场所的所有人将被赋予新状态（时段两端均包含）。",
                           "Everyone who checked in at the venue in the window gets the new "
                           "status (both ends included)."),
    "adm_venue_id": ("场所编号", "Venue number"),
    "adm_venue_unknown": ("场所不存在，请核对编号。", "No such venue: check the number."),
    "adm_start": ("开始（北京时间）", "From (Beijing time)"),
    "adm_end": ("结束（北京时间）", "Until (Beijing time)"),
    "adm_window": ("时段", "Window"),
    "adm_window_help": ("精确到分钟：结束时间所在的那一分钟也包含在内。",
                        "To the minute: the end minute is included."),
    "adm_popup_kind": ("弹窗类型", "Popup kind"),
    "adm_reason_placeholder": ("例如：确诊病例到访场所", "e.g. a confirmed case visited"),
    "adm_run_exposure": ("开始追踪", "Run exposure"),
    # trace and audit
    "adm_trace_audited": ("个案查询显示未脱敏的身份与行程信息。每次查询（无论是否查到）"
                          "都会连同查询目的、经办人记入审计日志，居民本人可查看。",
                          "A trace shows unmasked identity and check-ins. Every search, found "
                          "or not, is written to the audit log with its purpose and who ran "
                          "it; the citizen can see it."),
    "adm_trace_id": ("身份证号", "ID number"),
    "adm_purpose": ("查询目的", "Purpose"),
    "adm_purpose_help": ("必填，将记入审计日志。", "Required; written to the audit log."),
    "adm_purpose_epi": ("流行病学调查", "Epidemiological investigation"),
    "adm_purpose_close": ("密切接触者排查", "Close-contact screening"),
    "adm_purpose_appeal": ("居民申诉核实", "Checking a citizen's appeal"),
    "adm_since": ("起始日期（可选）", "Since (optional)"),
    "adm_trace_run": ("查询", "Trace"),
    "adm_trace_recorded": ("本次查询已记入审计日志（第 {id} 号）。",
                           "This search is recorded in the audit log (entry {id})."),
    "adm_trace_none": ("查无此人。", "No citizen with this ID number."),
    "adm_trace_still_audited": ("本次查询仍已记入审计日志。",
                                "The search is still recorded in the audit log."),
    "adm_person": ("身份信息", "Person"),
    "adm_phone": ("电话", "Phone"),
    "adm_status_now": ("当前状态", "Status now"),
    "adm_status_since": ("状态时间", "Status since"),
    "adm_status_then": ("当时状态", "Status then"),
    "adm_citizen": ("居民编号", "Citizen"),
    "adm_checkins": ("到访记录", "Check-ins"),
    "adm_no_checkins": ("没有到访记录。", "No check-ins."),
    "adm_history": ("状态变更记录", "Status history"),
    "adm_no_history": ("没有状态变更。", "No status changes."),
    "adm_from": ("原状态", "From"),
    "adm_to": ("新状态", "To"),
    "adm_district": ("区", "District"),
    "adm_address": ("地址", "Address"),
    "adm_audit_intro": ("只增不改：每一次个案查询与他人代查。",
                        "Append-only: every trace and every status check "
                                              "for another person."),
    "adm_action": ("操作", "Action"),
    "adm_action_trace": ("个案查询", "Trace"),
    "adm_action_proxy_check": ("他人代查", "Check for another"),
    "adm_target": ("对象", "Whom"),
    "adm_found": ("查到", "Found"),
    "adm_yes": ("是", "Yes"),
    "adm_no": ("否", "No"),
    "adm_all": ("全部", "All"),
    "adm_filter": ("筛选", "Filter"),
    "adm_no_audit": ("暂无审计记录。", "No audit entries."),
    # violations
    "adm_violations_intro": ("登记员违规（如代人扫码）时，其创建的所有登记簿立即停用，解除后恢复。",
                             "A registrar's violation (e.g. scanning for others) suspends "
                             "every logbook they created until it is lifted."),
    "adm_registrar_id": ("登记员的居民编号", "Registrar's citizen number"),
    "adm_violation_placeholder": ("例如：代他人扫码", "e.g. scanned for other people"),
    "adm_record_violation": ("记录违规并停用登记簿", "Record and suspend logbooks"),
    "adm_violation": ("违规", "Violation"),
    "adm_registrar": ("登记员", "Registrar"),
    "adm_active": ("生效中", "In force"),
    "adm_in_force": ("生效中", "In force"),
    "adm_lifted": ("已解除", "Lifted"),
    "adm_lift": ("解除", "Lift"),
    "adm_lift_reason": ("解除原因（可选）", "Reason (optional)"),
    "adm_suspended_n": ("已停用登记簿 {n} 个", "{n} logbooks suspended"),
    "adm_no_violations": ("没有违规记录。", "No violations."),
    # announcements and messages
    "adm_notices_intro": ("公告会立即推送给所有在线居民，其余居民下次打开时收到。",
                          "Announcements reach every citizen online at once, the rest when "
                          "they next open the app."),
    "adm_notice_text": ("公告内容", "Announcement"),
    "adm_publish": ("发布", "Publish"),
    "adm_published": ("已发布。", "Published."),
    "adm_published_list": ("已发布的公告", "Published announcements"),
    "adm_no_notices": ("暂无公告。", "No announcements yet."),
    "adm_messages_intro": ("居民的留言，最新在前（发送人已脱敏）。",
                           "What citizens wrote, newest first (senders masked)."),
    "adm_no_messages": ("暂无留言。", "No messages yet."),
    # the wallboard
    "wb_title": ("场所人流监测", "Venue crowding"),
    "wb_beijing_time": ("北京时间", "Beijing time"),
    "wb_fullscreen": ("全屏", "Full screen"),
    "wb_exit_fullscreen": ("退出全屏", "Exit full screen"),
    "wb_stale": ("数据未更新", "Data not updating"),
    "wb_closed_4403": ("仅限卫生健康部门工作人员查看。", "For health-authority officials only."),
    "wb_kpis": ("关键指标", "Key figures"),
    "wb_scans_per_min": ("每分钟扫码（近 60 秒）", "Check-ins a minute (last 60 s)"),
    "wb_alerts_hour": ("近 1 小时异常到访", "Abnormal arrivals, last hour"),
    "wb_active_venues": ("近 {m} 分钟有到访的场所", "Venues with arrivals, last {m} min"),
    "wb_busy_venues": ("繁忙场所", "Busy venues"),
    "wb_crowded_venues": ("拥挤场所", "Crowded venues"),
    "wb_districts": ("各区概况", "By district"),
    "wb_venues": ("场所", "Venues"),
    "wb_recent": ("近15分钟", "Last 15 min"),
    "wb_chart": ("近 1 小时每分钟扫码量", "Check-ins per minute, last hour"),
    "wb_chart_label": ("近 1 小时共 {total} 次扫码，峰值每分钟 {peak} 次",
                       "{total} check-ins in the last hour, at most {peak} a minute"),
    "wb_legend_scans": ("扫码", "Check-ins"),
    "wb_legend_alerts": ("其中异常", "of which abnormal"),
    "wb_now": ("现在", "now"),
    "wb_ticker": ("异常到访（实时）", "Abnormal arrivals (live)"),
    "wb_no_abnormal": ("近 1 小时无异常到访。", "No abnormal arrivals in the last hour."),
    "wb_top": ("最拥挤的场所", "Most crowded venues"),
    "wb_levels": ("各场所等级", "Venue levels"),
    "wb_rule": ("近15分钟到访 ÷ 容量：<50% 正常，<90% 繁忙，≥90% 拥挤",
                "arrivals in 15 min ÷ capacity: <50% normal, <90% busy, ≥90% crowded"),
    "wb_level_normal": ("正常", "Normal"),
    "wb_level_busy": ("繁忙", "Busy"),
    "wb_level_crowded": ("拥挤", "Crowded"),
    "wb_of_capacity": ("{recent} 人 / 容量 {capacity}（{pct}%）",
                       "{recent} of capacity {capacity} ({pct}%)"),
    "wb_no_capacity": ("{recent} 人 · 每分钟 {rate} 次（未登记容量）",
                       "{recent} arrivals · {rate}/min (no capacity given)"),
    "wb_advice": ("防控建议", "Advice"),
    "wb_no_advice": ("目前各场所扫码速度正常。", "Every venue's scan rate is manageable."),
    "wb_advice_more_codes": ("{name}（{district}）每分钟扫码 {rate} 次，现有登记码 {codes} 个："
                             "请增设 {add} 个登记码或登记员，"
                             "分散排队，保持一米线。",
                             "{name} ({district}): {rate} check-ins a minute at {codes} QR "
                             "codes — post {add} more codes or add registrars, and spread the "
                             "queue along one-metre lines."),
    "wb_advice_and_limit": ("已达拥挤，请同时限流入场。", " It is crowded: limit entry too."),
    "wb_advice_limit_entry": ("{name}（{district}）已拥挤：请限流入场，门外按一米线排队。",
                              "{name} ({district}) is crowded: limit entry and queue outside "
                              "at one-metre lines."),
    "wb_no_activity": ("近 15 分钟无到访。", "No arrivals in the last 15 minutes."),
}
