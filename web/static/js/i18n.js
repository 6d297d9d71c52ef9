// Chinese first, English on request. Elements carry data-i18n="key" (text) and
// data-i18n-attr="attr:key;attr2:key2" (attributes). The choice is kept in localStorage.

const DICT = {
  // common
  app: ["视频信访平台", "Video Petition Platform"],
  lang_switch: ["English", "中文"],
  lang_switch_label: ["切换到英文", "Switch to Chinese"],
  connecting: ["正在连接…", "Connecting…"],
  online: ["已连接", "Connected"],
  offline: ["网络中断，正在重新连接…", "Connection lost, reconnecting…"],
  media_reconnecting: ["正在重新连接媒体…", "Reconnecting media…"],
  media_failed: ["媒体连接失败，请刷新页面", "Media connection failed; please reload the page"],
  recording: ["● 正在录音录像", "● Recording"],
  not_recording: ["未录制", "Not recording"],
  end: ["结束", "End"],
  end_call: ["结束通话", "End call"],
  you: ["我", "You"],
  participants: ["参会人员", "Participants"],
  quality: ["连接质量", "Connection quality"],
  no_data: ["暂无数据", "No data yet"],
  unavailable: ["此功能暂不可用（服务端尚未提供）", "Not available yet (the server does not provide it)"],
  load_failed: ["加载失败", "Failed to load"],
  save: ["保存", "Save"],
  saved: ["已保存", "Saved"],
  search: ["搜索", "Search"],
  close: ["关闭", "Close"],
  print: ["打印", "Print"],
  // errors: the server's stable codes (signaling and REST), never its English message
  err_generic: ["操作失败，请稍后再试", "Something went wrong; please try again"],
  err_offline: ["网络中断，请稍后再试", "The connection was lost; please try again"],
  err_not_found: ["未找到，请核对后再试", "Not found; please check and try again"],
  err_forbidden: ["没有权限进行此操作", "You are not allowed to do this"],
  err_unauthenticated: ["未登录或凭证无效", "Not signed in, or the credential is not valid"],
  err_invalid: ["输入有误，请核对后再试", "The input is not valid; please check it"],
  err_bad_message: ["请求有误，请刷新页面后再试", "The request was not valid; please reload the page"],
  err_bad_json: ["请求有误，请刷新页面后再试", "The request was not valid; please reload the page"],
  err_unknown_type: ["请求有误，请刷新页面后再试", "The request was not valid; please reload the page"],
  err_invalid_state: ["当前状态下不能进行此操作", "This cannot be done in the current state"],
  err_invalid_transition: ["当前状态下不能进行此操作", "This cannot be done in the current state"],
  err_conflict: ["操作冲突，请刷新后再试", "Conflict; please refresh and try again"],
  err_already_taken: ["该来访已由其他工作人员接听", "Another officer has already taken this visit"],
  err_media_unavailable: ["音视频服务暂不可用，请稍后再试", "The media service is unavailable; please try again later"],
  err_rate_limited: ["操作过于频繁，请稍后再试", "Too many requests; please wait a moment"],
  err_csrf: ["页面已过期，请刷新后再试", "The page has expired; please reload it"],
  err_bad_credentials: ["用户名或密码错误", "Wrong username or password"],
  err_unsupported_media_type: ["不支持的文件类型", "This file type is not supported"],
  err_internal_error: ["服务器内部错误，请稍后再试", "Server error; please try again later"],
  err_heartbeat_timeout: ["连接超时，正在重新连接", "The connection timed out; reconnecting"],
  conn_refused: ["凭证无效，已断开连接", "Credential not valid; disconnected"],
  conn_closed: ["已断开连接", "Disconnected"],
  // session states (history lists)
  state_waiting: ["排队中", "Waiting"],
  state_live: ["进行中", "In progress"],
  state_ended: ["已结束", "Ended"],
  state_interrupted: ["异常中断", "Interrupted"],
  state_cancelled: ["已取消", "Cancelled"],
  item_state_registered: ["已登记", "Registered"],
  item_state_transferred: ["已转送", "Transferred"],
  item_state_assigned: ["已交办", "Assigned"],
  item_state_diverted: ["已导入法定途径", "Diverted to a legal procedure"],
  item_state_not_accepted: ["不予受理", "Not accepted"],
  item_state_received: ["已接收", "Received by the handling unit"],
  item_state_returned: ["已退回", "Returned"],
  item_state_accepted: ["已受理", "Accepted"],
  item_state_opinion_issued: ["已出具处理意见", "Opinion issued"],
  item_state_review_requested: ["复查中", "Under review"],
  item_state_review_opinion: ["已出具复查意见", "Review opinion issued"],
  item_state_rereview_requested: ["复核中", "Under re-review"],
  item_state_rereview_opinion: ["已出具复核意见", "Re-review opinion issued"],
  item_state_concluded: ["已办结", "Concluded"],
  item_state_transferred_out: ["已转送区外机关", "Transferred outside the district"],
  // the next deadline of an item (lifecycle keys)
  due_route: ["转送交办期限", "Routing deadline"],
  due_object: ["异议期限", "Objection deadline"],
  due_accept: ["受理告知期限", "Acceptance deadline"],
  due_opinion: ["办理期限", "Handling deadline"],
  due_review_request: ["申请复查期限", "Deadline to request a review"],
  due_review_opinion: ["复查期限", "Review deadline"],
  due_rereview_request: ["申请复核期限", "Deadline to request a re-review"],
  due_rereview_opinion: ["复核期限", "Re-review deadline"],
  due_assignment_report: ["交办报告期限", "Assignment report deadline"],
  mute_audio: ["静音", "Mute"],
  unmute_audio: ["取消静音", "Unmute"],
  mute_video: ["关闭画面", "Stop video"],
  unmute_video: ["开启画面", "Start video"],
  remove: ["移出", "Remove"],
  admit: ["准入", "Admit"],
  refuse: ["拒绝", "Refuse"],
  lobby: ["等候区", "Lobby"],
  lobby_empty: ["等候区无人", "Nobody is waiting"],
  chat: ["文字消息", "Messages"],
  send: ["发送", "Send"],
  message: ["消息", "Message"],
  nav: ["导航", "Navigation"],
  nav_console: ["接访台", "Console"],
  nav_room: ["会议/调解", "Meetings"],
  nav_training: ["培训", "Training"],
  nav_library: ["点播", "Library"],
  nav_dashboard: ["统计", "Statistics"],
  nav_lookup: ["查询", "Lookup"],
  logout: ["退出", "Sign out"],
  session_ended: ["会话已结束", "The session has ended"],
  removed: ["您已被移出会话", "You were removed from the session"],
  superseded: ["您已在其他窗口或设备上进入此会话，本页面已断开", "You are in this session in another window or device; this page has disconnected"],
  // roles
  role_resident: ["信访群众", "Resident"],
  role_officer: ["接访人员", "Reception officer"],
  role_convener: ["主持人", "Convener"],
  role_member: ["参会人员", "Member"],
  role_mediator: ["调解员", "Mediator"],
  role_party: ["当事人", "Party"],
  role_lawyer: ["律师", "Lawyer"],
  role_counsellor: ["心理咨询师", "Counsellor"],
  role_social_worker: ["社工", "Social worker"],
  role_official: ["部门工作人员", "Official"],
  role_trainer: ["讲师", "Trainer"],
  role_viewer: ["学员", "Viewer"],
  role_speaker: ["发言学员", "Speaker"],
  role_field: ["手持单兵", "Field unit"],
  // kiosk
  kiosk_title: ["视频信访", "Video petition"],
  kiosk_choose: ["请选择您要反映的事项类别", "Please choose the kind of matter"],
  cat_housing: ["房屋与拆迁", "Housing and demolition"],
  cat_labour: ["劳动与社保", "Work and social security"],
  cat_land: ["土地与规划", "Land and planning"],
  cat_welfare: ["民政与救助", "Welfare and assistance"],
  cat_law: ["政法与治安", "Law and public order"],
  cat_other: ["其他事项", "Other matters"],
  kiosk_request: ["呼叫接访人员", "Call a reception officer"],
  kiosk_queue: ["正在排队，请稍候", "You are in the queue, please wait"],
  kiosk_position: ["您前面还有 {n} 位", "{n} ahead of you"],
  kiosk_next: ["马上就轮到您了", "You are next"],
  kiosk_cancel: ["取消排队", "Leave the queue"],
  kiosk_in_call: ["正在视频信访", "Video petition in progress"],
  kiosk_receipt: ["信访回执", "Petition receipt"],
  kiosk_lookup_code: ["查询码", "Lookup code"],
  kiosk_reference: ["会话编号", "Session reference"],
  kiosk_code_pending: ["查询码将由工作人员登记后提供", "The lookup code is given once the officer registers your matter"],
  kiosk_rate: ["请对本次接待进行评价", "Please rate this reception"],
  kiosk_thanks: ["感谢您的评价", "Thank you for your rating"],
  kiosk_done: ["完成", "Done"],
  kiosk_announcements: ["通知公告", "Announcements"],
  kiosk_no_token: ["本终端尚未激活，请联系管理员", "This terminal is not activated; contact the administrator"],
  kiosk_not_activated: ["未激活", "Not activated"],
  kiosk_trainings: ["正在直播的培训", "Trainings on air"],
  kiosk_watch: ["观看", "Watch"],
  kiosk_stop_watching: ["退出观看", "Stop watching"],
  kiosk_left_training: ["已退出观看", "You stopped watching"],
  kiosk_hand_up: ["已举手，请等待讲师请您发言", "Hand raised; wait for the trainer to let you speak"],
  training_live: ["直播中", "On air"],
  training_upcoming: ["即将开始", "Starting soon"],
  open_trainings: ["正在进行和即将开始的培训", "Trainings on air and starting soon"],
  no_trainings: ["目前没有可参加的培训", "No training to join right now"],
  kiosk_category: ["事项类别", "Matter"],
  kiosk_next_step: ["下一步", "Next step"],
  kiosk_due: ["{what}：{date}前", "{what}: by {date}"],
  kiosk_rated_as: ["感谢您的评价！您的评价：{label}。如需修改，请点选其他评价。", "Thank you for your rating! Your rating: {label}. Tap another to change it."],
  rate_1: ["很不满意", "Very dissatisfied"],
  rate_2: ["不满意", "Dissatisfied"],
  rate_3: ["基本满意", "Fair"],
  rate_4: ["满意", "Satisfied"],
  rate_5: ["非常满意", "Very satisfied"],
  // console
  console_title: ["接访工作台", "Reception console"],
  queue: ["排队中的视频信访", "Visits waiting"],
  queue_empty: ["当前无人排队", "Nobody is waiting"],
  accept: ["接听", "Accept"],
  waiting_since: ["等候", "Waiting"],
  item_form: ["信访事项", "Petition item"],
  item_new: ["登记新事项", "Register a new item"],
  item_link: ["按查询码关联已有事项", "Link an existing item by lookup code"],
  item_type: ["类型", "Type"],
  item_subject_unit: ["被反映单位", "Unit complained about"],
  type_complaint: ["申诉求决", "Complaint / demand"],
  type_suggestion: ["建议意见", "Suggestion"],
  type_accusation: ["检举控告", "Accusation"],
  item_request: ["诉求", "Request"],
  item_facts: ["事实", "Facts"],
  item_reasons: ["理由", "Reasons"],
  petitioner_name: ["信访人姓名", "Petitioner's name"],
  petitioner_phone: ["联系电话", "Phone"],
  register: ["登记", "Register"],
  link: ["关联", "Link"],
  linked: ["已关联事项", "Linked to item"],
  invite: ["邀请第三方", "Invite a third party"],
  invite_role: ["身份", "Role"],
  invite_name: ["姓名", "Name"],
  invite_make: ["生成邀请链接", "Make invite link"],
  invite_viewer_name: ["学员姓名或单位（举手时显示）", "Viewer's name or unit (shown when a hand is raised)"],
  invite_link: ["邀请链接", "Invite link"],
  my_items: ["我的事项与期限", "My items and deadlines"],
  due_soon: ["即将到期", "Due soon"],
  overdue: ["已超期", "Overdue"],
  history: ["会话记录", "Session history"],
  recordings: ["录像", "Recordings"],
  details: ["详情", "Details"],
  kind: ["类型", "Kind"],
  state: ["状态", "State"],
  created: ["时间", "Time"],
  category: ["类别", "Category"],
  unit: ["单位", "Unit"],
  rating: ["评价", "Rating"],
  // rooms
  room_title: ["视频会议与调解", "Conference and mediation"],
  room_create: ["发起", "Start"],
  room_kind: ["形式", "Kind"],
  kind_visit: ["视频信访", "Video visit"],
  kind_call: ["通话", "Call"],
  kind_conference: ["视频会议/会商", "Conference"],
  kind_mediation: ["视频调解", "Mediation"],
  kind_training: ["视频培训", "Training"],
  kind_field: ["手持单兵", "Field"],
  room_name: ["主题", "Title"],
  room_join: ["加入", "Join"],
  room_session_id: ["会话编号", "Session id"],
  share_screen: ["共享屏幕", "Share screen"],
  stop_share: ["停止共享", "Stop sharing"],
  outcome: ["结果", "Outcome"],
  outcome_agreed: ["达成调解协议", "Agreement reached"],
  outcome_not_agreed: ["未达成协议", "No agreement"],
  outcome_done: ["会议结束", "Meeting concluded"],
  in_lobby: ["请在等候区稍候，主持人将准许您进入", "Please wait in the lobby; the convener will let you in"],
  refused: ["主持人拒绝了您的入会请求", "The convener refused your entry"],
  // training
  training_title: ["视频培训", "Training"],
  raise_hand: ["举手", "Raise hand"],
  lower_hand: ["放下手", "Lower hand"],
  hands: ["举手的学员", "Raised hands"],
  promote: ["请其发言", "Let speak"],
  demote: ["结束发言", "End speaking"],
  attendance: ["参训人数", "Attendance"],
  questions: ["提问", "Questions"],
  you_speak: ["您正在发言", "You are speaking"],
  speaking_now: ["正在讲话", "Speaking"],
  // join / field
  join_title: ["受邀参加视频会话", "Join by invitation"],
  join_invalid: ["邀请链接无效或已过期", "The invite link is not valid or has expired"],
  field_title: ["手持单兵", "Field unit"],
  field_code: ["接入码", "Join code"],
  field_start: ["开始回传", "Start streaming"],
  field_live: ["正在回传后置摄像头画面", "Streaming the rear camera"],
  // library
  library_title: ["视频点播", "Recordings library"],
  date_from: ["开始日期", "From"],
  date_to: ["结束日期", "To"],
  play: ["播放", "Play"],
  no_recordings: ["没有符合条件的录像", "No recordings match"],
  rec_playback: ["合成回放（全体参会人员画面合成）", "Composed playback (all participants in one picture)"],
  rec_someone: ["参会人员", "Participant"],
  rec_part: ["第{n}段（{reason}）", "part {n} ({reason})"],
  rec_started: ["开始于 {time}", "starts {time}"],
  rec_reason_start: ["开始录制", "start of recording"],
  rec_reason_rotation: ["定时分段", "scheduled split"],
  rec_reason_track_added: ["新增音视频轨道", "camera or microphone added"],
  rec_reason_resolution: ["分辨率变化", "resolution change"],
  rec_reason_restart: ["中断后重新开始", "restarted after an interruption"],
  rec_reason_other: ["分段", "new file"],
  rec_recovered_copy: ["异常中断后恢复的可拖动副本（原文件 #{id}）", "seekable copy recovered after a crash (original #{id})"],
  rec_truncated: ["异常中断的原始文件（不完整）", "original file cut off by a crash (incomplete)"],
  // dashboard
  dashboard_title: ["信访统计", "Petition statistics"],
  by_channel: ["按渠道受理量", "Received by channel"],
  completion_rate: ["办结率", "Completion rate"],
  overdue_by_unit: ["各单位超期件", "Overdue by unit"],
  sessions_by_kind: ["各类视频会话数", "Video sessions by kind"],
  annual_report: ["年度报告", "Annual report"],
  year: ["年度", "Year"],
  rates: ["各项比率", "Rates"],
  totals: ["总体情况", "Overview"],
  fig_received: ["受理信访事项", "Items received"],
  fig_online: ["网上信访", "Online petitions"],
  fig_concluded: ["已办结", "Concluded"],
  fig_in_progress: ["正在办理", "In progress"],
  fig_closed_otherwise: ["其他方式结束", "Closed otherwise"],
  fig_transfers: ["转送", "Transferred"],
  fig_assignments: ["交办", "Assigned"],
  fig_visit_batches: ["视频接访（批次）", "Video visits (batches)"],
  fig_visit_person_times: ["视频接访（人次）", "Video visits (person-times)"],
  fig_leader_receptions: ["领导接访", "Leader duty receptions"],
  rate_name_completion: ["办结率", "Completion rate"],
  rate_name_timely_acceptance: ["按期受理率", "Timely acceptance"],
  rate_name_on_time_completion: ["按期办结率", "On-time completion"],
  rate_name_satisfaction: ["满意率", "Satisfaction"],
  rate_name_participation: ["参评率", "Participation"],
  channel_letter: ["来信", "Letter"],
  channel_visit: ["来访", "Visit"],
  channel_online: ["网上信访", "Online"],
  channel_phone: ["电话", "Phone"],
  channel_fax: ["传真", "Fax"],
  channel_video: ["视频信访", "Video"],
  level_central: ["中央交办", "From the centre"],
  level_provincial: ["省级交办", "From the province"],
  level_municipal: ["市级交办", "From the city"],
  report_title: ["{year}年度信访工作统计报告", "Petition statistics report {year}"],
  report_period: ["统计期间：{start}至{end}", "Period: {start} to {end}"],
  report_generated: ["生成时间：{time}", "Generated: {time}"],
  report_checks: ["核对（各分项之和与总数）", "Checks (each breakdown against its total)"],
  report_checks_ok: ["各分项之和均等于总数。", "Every breakdown sums to its total."],
  report_mismatch: ["不一致：{name}合计 {sum}，总数 {total}", "Mismatch: {name} sums to {sum}, the total is {total}"],
  report_item: ["项目", "Item"],
  report_count: ["件数", "Count"],
  report_value: ["数值", "Value"],
  report_numerator: ["分子", "Numerator"],
  report_denominator: ["分母", "Denominator"],
  report_total: ["合计", "Total"],
  report_from_above: ["上级交办重复信访事项（按来源层级）", "Repeat items assigned from above (by level)"],
  report_assigned: ["交办", "Assigned"],
  report_led_by_other: ["其中他单位牵头（不计入）", "Led by another unit (not counted)"],
  report_resolved: ["已化解", "Resolved"],
  report_resolution_rate: ["化解率", "Resolution rate"],
  by_platform: ["网上信访按平台", "Online petitions by platform"],
  by_type: ["按类型", "By type"],
  by_state: ["按办理状态", "By state"],
  by_category: ["按问题类别", "By category"],
  open_report: ["年度报告（新窗口打开）", "Annual report (opens in a new tab)"],
  // lookup
  lookup_title: ["信访事项查询", "Check a petition"],
  lookup_phone4: ["手机号后4位", "Last 4 digits of your phone"],
  lookup_go: ["查询", "Check"],
  lookup_not_found: ["未找到该事项，请核对查询码", "No item found; check the code"],
  lookup_code_bad: ["查询码格式不正确，应为10位字母和数字，例如 ABCDE-23456", "The code is not valid: 10 letters and digits, e.g. ABCDE-23456"],
  lookup_phone_hint: ["评价时需要填写", "needed only to rate"],
  lookup_phone_needed: ["请填写登记时所留手机号的后4位数字", "Enter the last 4 digits of the phone number you registered"],
  lookup_phone_wrong: ["手机号后4位与登记信息不符，请核对", "The phone digits do not match the registration; please check them"],
  lookup_rate_acceptance: ["请对受理情况进行评价（是否及时受理）", "Rate the acceptance (was it accepted in time)"],
  lookup_rate_handling: ["请对办理结果进行评价", "Rate how your matter was handled"],
  lookup_rated: ["您的评价：{label}，感谢！", "Your rating: {label}. Thank you!"],
  lookup_registered_on: ["登记日期", "Registered on"],
  progress: ["办理进度", "Progress"],
  due_on: ["办理期限", "Due on"],
  satisfaction: ["满意度评价", "Satisfaction"],
  satisfied: ["满意", "Satisfied"],
  not_satisfied: ["不满意", "Not satisfied"],
  // login
  login_title: ["工作人员登录", "Staff sign-in"],
  username: ["用户名", "Username"],
  password: ["密码", "Password"],
  sign_in: ["登录", "Sign in"],
  login_failed: ["用户名或密码错误", "Wrong username or password"],
  // errors the server answers with a stable code (ui.js api() shows these instead of its text)
  err_not_admitted: ["您尚未获准进入会话，获准进入后才能查看会话信息", "You can see the session once you are admitted"],
  err_throttled: ["登录失败次数过多，请稍后再试", "Too many failed attempts; please try again later"],
  err_too_large: ["提交的内容过大", "What you sent is too large"],
};

const KEY = "pg.lang";

export function lang() {
  return localStorage.getItem(KEY) === "en" ? "en" : "zh";
}

/** The text of `key` in the current language; {name} placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const entry = DICT[key];
  let s = entry ? entry[lang() === "en" ? 1 : 0] : key;
  for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

/** The text for an error from the server or the socket, by its stable code, in the page's
 * language (the server's own message is English and for the log, never for the page). */
export function errorText(err) {
  if (err && err.status === 429 && !(err.code && has(`err_${err.code}`))) return t("err_rate_limited");
  const code = err && err.code;
  if (code && has(`err_${code}`)) return t(`err_${code}`);
  if (err && err.status === 404) return t("err_not_found");
  if (err && err.status === 403) return t("err_forbidden");
  return t("err_generic");
}

/** The text of `key` in both languages (search matches either). */
export function both(key) {
  const entry = DICT[key];
  return entry ? entry.join(" ") : "";
}

/** Whether `key` has a text (so internal keys never reach the page). */
export function has(key) {
  return Object.hasOwn(DICT, key);
}

export function roleName(role) {
  return DICT[`role_${role}`] ? t(`role_${role}`) : role;
}

/** Apply the language to `root`: data-i18n text and data-i18n-attr attributes. */
export function apply(root = document) {
  document.documentElement.lang = lang() === "en" ? "en" : "zh-CN";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      if (attr && key) el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
  const title = document.querySelector("[data-i18n-title]");
  if (title) document.title = `${t(title.dataset.i18nTitle)} · ${t("app")}`;
}

const listeners = new Set();

/** Call `cb` after every language switch (pages re-render dynamic text). */
export function onChange(cb) {
  listeners.add(cb);
}

/** Wire the #lang button (every page has one) and apply the stored language. */
export function setup() {
  apply();
  const button = document.getElementById("lang");
  if (button) {
    button.addEventListener("click", () => {
      localStorage.setItem(KEY, lang() === "en" ? "zh" : "en");
      apply();
      for (const cb of listeners) cb();
    });
  }
}
