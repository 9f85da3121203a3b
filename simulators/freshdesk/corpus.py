"""Helpdesk phrases by topic and language, the raw material of the simulator's generated tickets and articles.

Placeholders: {product}, {order}, {amount}, {code}. Every topic says the same things in Korean, English and
Japanese so that a search in one language has matches in the others.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("ko", "en", "ja")


@dataclass(frozen=True)
class Phrases:
    """What customers and agents say about one topic in one language."""

    subjects: tuple[str, ...]
    problems: tuple[str, ...]
    details: tuple[str, ...]
    replies: tuple[str, ...]
    article: tuple[str, str]  # knowledge-base title, body sentence


@dataclass(frozen=True)
class Topic:
    tags: tuple[str, ...]
    ticket_type: str
    phrases: dict[str, Phrases]


TOPICS: dict[str, Topic] = {
    "login": Topic(("login", "sso"), "Problem", {
        "en": Phrases(
            ("Cannot log in to my account", "Login fails after password reset"),
            ("Since this morning I cannot log in to {product}: it says \"Invalid credentials\" although my "
             "password is correct.", "I reset my password twice, but the sign-in page keeps sending me back."),
            ("Tried Chrome & Firefox", "Cleared cookies and cache", "Two-factor code arrives late"),
            ("I have reset your login session; please sign in again and tell us if the error persists.",
             "Your account was locked after too many failed attempts. It is unlocked now."),
            ("How to fix login problems", "Reset your password from the sign-in page, clear your browser cookies "
             "and enter the two-factor code within 30 seconds.")),
        "ko": Phrases(
            ("로그인이 되지 않습니다", "비밀번호 재설정 후에도 로그인 실패"),
            ("오늘 아침부터 {product}에 로그인할 수 없습니다. 비밀번호가 맞는데도 \"잘못된 자격 증명\" 오류가 "
             "나옵니다.",
             "비밀번호를 두 번이나 재설정했지만 계속 로그인 화면으로 돌아갑니다."),
            ("크롬과 엣지에서 모두 시도함", "쿠키와 캐시를 삭제함", "2단계 인증 코드가 늦게 도착함"),
            ("로그인 세션을 초기화했습니다. 다시 로그인해 보시고 문제가 계속되면 알려 주세요.",
             "로그인 실패가 반복되어 계정이 잠겨 있었습니다. 지금은 잠금이 해제되었습니다."),
            ("로그인 문제 해결 방법", "로그인 페이지에서 비밀번호를 재설정하고 브라우저 쿠키를 삭제한 뒤 "
             "2단계 인증 코드를 30초 안에 입력해 주세요.")),
        "ja": Phrases(
            ("アカウントにログインできません", "パスワード再設定後もログインに失敗します"),
            ("今朝から{product}にログインできません。パスワードは正しいのに「認証情報が無効です」と表示されます。",
             "パスワードを2回再設定しましたが、ログイン画面に戻されてしまいます。"),
            ("ChromeとSafariで試しました", "Cookieとキャッシュを削除しました", "二段階認証コードの到着が遅い"),
            ("ログインセッションをリセットしました。もう一度ログインをお試しください。",
             "ログイン失敗が続いたためアカウントがロックされていました。現在は解除済みです。"),
            ("ログインできない場合の対処法", "ログインページからパスワードを再設定し、ブラウザのCookieを削除して、"
             "二段階認証コードを30秒以内に入力してください。")),
    }),
    "billing": Topic(("billing", "invoice"), "Question", {
        "en": Phrases(
            ("I was charged twice this month", "Wrong amount on my invoice"),
            ("My card was charged {amount} twice for the same subscription of {product}.",
             "The invoice for order {order} shows a higher amount than the plan price."),
            ("Both charges are on my bank statement", "Plan: Pro, billed monthly", "VAT number is missing"),
            ("The duplicate charge was voided; it disappears from your statement within 5 business days.",
             "I corrected the invoice and sent the new PDF to your billing e-mail."),
            ("Understanding your invoice", "Invoices list each seat, the billing period and taxes; a corrected "
             "invoice can be requested from Billing settings.")),
        "ko": Phrases(
            ("이번 달 요금이 두 번 청구되었습니다", "청구서 금액이 잘못되었습니다"),
            ("같은 {product} 구독에 대해 카드로 {amount}이 두 번 결제되었습니다.",
             "주문 {order}의 청구서 금액이 요금제 가격보다 높게 나옵니다."),
            ("카드 명세서에 결제가 두 건 있음", "요금제: 프로, 월간 결제", "사업자 등록번호가 누락됨"),
            ("중복 결제는 취소 처리되었으며 영업일 기준 5일 이내에 명세서에서 사라집니다.",
             "청구서를 수정하여 새 PDF를 결제 담당 이메일로 보내 드렸습니다."),
            ("청구서 보는 방법", "청구서에는 좌석별 금액, 청구 기간, 세금이 표시되며 결제 설정에서 "
             "수정된 청구서를 요청할 수 있습니다.")),
        "ja": Phrases(
            ("今月二重に請求されました", "請求書の金額が間違っています"),
            ("同じ{product}のサブスクリプションで{amount}が二回カードに請求されました。",
             "注文{order}の請求書に、プラン料金より高い金額が記載されています。"),
            ("明細に請求が二件あります", "プラン：Pro、月払い", "登録番号が記載されていません"),
            ("二重請求は取り消しました。5営業日以内に明細から消えます。",
             "請求書を修正し、新しいPDFを請求先メールアドレスにお送りしました。"),
            ("請求書の見方", "請求書にはシートごとの金額、請求期間、税額が記載されます。修正版は請求設定から"
             "依頼できます。")),
    }),
    "refund": Topic(("refund",), "Refund", {
        "en": Phrases(
            ("Refund request for order {order}", "Refund not received yet"),
            ("I cancelled within 14 days and would like a full refund of {amount}.",
             "You confirmed my refund two weeks ago but the money is still not back on my card."),
            ("Order date: last week", "Payment by credit card", "Reason: product did not meet expectations"),
            ("Your refund of {amount} has been issued; banks usually need 5-10 days to show it.",
             "I checked with our payment provider: the refund was sent on the original card."),
            ("Refund policy", "Purchases can be refunded in full within 14 days; the money returns to the original "
             "payment method within 10 business days.")),
        "ko": Phrases(
            ("주문 {order} 환불 요청", "환불금이 아직 입금되지 않았습니다"),
            ("14일 이내에 취소했으니 {amount} 전액 환불을 원합니다.",
             "2주 전에 환불이 확인되었다고 하셨는데 아직 카드로 돈이 돌아오지 않았습니다."),
            ("주문일: 지난주", "신용카드로 결제", "사유: 제품이 기대에 미치지 못함"),
            ("{amount} 환불이 처리되었습니다. 카드사 반영까지 보통 5~10일이 걸립니다.",
             "결제 대행사에 확인한 결과 원래 결제한 카드로 환불이 완료되었습니다."),
            ("환불 정책 안내", "구매 후 14일 이내에는 전액 환불되며, 환불금은 영업일 기준 10일 이내에 원래 결제 "
             "수단으로 돌아갑니다.")),
        "ja": Phrases(
            ("注文{order}の返金依頼", "返金がまだ届いていません"),
            ("14日以内にキャンセルしましたので、{amount}の全額返金をお願いします。",
             "2週間前に返金の確認をいただきましたが、まだカードに返金されていません。"),
            ("注文日：先週", "クレジットカード払い", "理由：期待していた製品ではなかった"),
            ("{amount}の返金手続きが完了しました。反映まで通常5〜10日かかります。",
             "決済代行会社に確認したところ、元のカードへの返金は完了しています。"),
            ("返金ポリシー", "購入後14日以内であれば全額返金いたします。返金は10営業日以内に元のお支払い方法に"
             "戻ります。")),
    }),
    "shipping": Topic(("shipping", "delivery"), "Incident", {
        "en": Phrases(
            ("My package has not arrived", "Order {order} delivered to the wrong address"),
            ("The tracking page for order {order} has said \"in transit\" for ten days.",
             "The courier marked my parcel as delivered, but nobody at my address received it."),
            ("Tracking number attached", "Shipping method: express", "Nobody was home on Tuesday"),
            ("I opened an investigation with the courier and will update you within 48 hours.",
             "We are sending a replacement today by express shipping at no cost."),
            ("Tracking your delivery", "Use the tracking number in your confirmation e-mail; parcels in transit "
             "for more than 7 days can be reported to support.")),
        "ko": Phrases(
            ("택배가 도착하지 않았습니다", "주문 {order}이 다른 주소로 배송되었습니다"),
            ("주문 {order}의 배송 조회가 열흘째 \"배송 중\"으로 나옵니다.",
             "택배사는 배송 완료로 표시했지만 우리 집에서는 아무도 받지 못했습니다."),
            ("운송장 번호 첨부", "배송 방법: 특급", "화요일에 집에 아무도 없었음"),
            ("택배사에 조사를 요청했으며 48시간 이내에 다시 안내해 드리겠습니다.",
             "오늘 특급 배송으로 대체 상품을 무료로 보내 드립니다."),
            ("배송 조회 방법", "주문 확인 이메일의 운송장 번호로 조회하실 수 있으며, 7일 넘게 배송 중인 택배는 "
             "고객센터에 신고해 주세요.")),
        "ja": Phrases(
            ("荷物が届きません", "注文{order}が別の住所に配達されました"),
            ("注文{order}の追跡ページが10日間「輸送中」のままです。",
             "配送業者は配達完了としていますが、自宅では誰も受け取っていません。"),
            ("追跡番号を添付します", "配送方法：速達", "火曜日は不在でした"),
            ("配送業者に調査を依頼しました。48時間以内にご連絡します。",
             "本日、代替品を速達で無料にてお送りします。"),
            ("配送状況の確認方法", "確認メールに記載の追跡番号で確認できます。7日以上輸送中の荷物はサポートに"
             "ご連絡ください。")),
    }),
    "bug": Topic(("bug", "export"), "Problem", {
        "en": Phrases(
            ("App crashes when exporting reports", "Error <E{code}> when saving a document"),
            ("Every time I export a report to PDF, {product} freezes and closes.",
             "Saving fails with the message \"Error <E{code}>: could not write file\"."),
            ("Version 4.2 on Windows 11", "Happens with files > 10 MB", "Screenshot attached"),
            ("Thanks for the details. Our developers reproduced the crash; a fix ships in the next release.",
             "Please update to version 4.3, which fixes error E{code} when saving."),
            ("Troubleshooting export errors", "If an export crashes, update the app, split files larger than "
             "10 MB and send us the error code shown on screen.")),
        "ko": Phrases(
            ("보고서를 내보낼 때 앱이 종료됩니다", "문서 저장 시 <E{code}> 오류"),
            ("보고서를 PDF로 내보낼 때마다 {product}이 멈춘 뒤 꺼집니다.",
             "저장하면 \"오류 <E{code}>: 파일을 쓸 수 없습니다\"라는 메시지가 나옵니다."),
            ("윈도우 11에서 버전 4.2 사용", "10MB보다 큰 파일에서 발생", "스크린샷 첨부"),
            ("자세히 알려 주셔서 감사합니다. 개발팀이 오류를 재현했으며 다음 릴리스에서 수정됩니다.",
             "저장 시 E{code} 오류가 수정된 4.3 버전으로 업데이트해 주세요."),
            ("내보내기 오류 해결", "내보내기 중 앱이 종료되면 앱을 업데이트하고 10MB보다 큰 파일은 나누어 "
             "저장한 뒤 화면의 오류 코드를 보내 주세요.")),
        "ja": Phrases(
            ("レポートのエクスポート時にアプリが落ちます", "保存時にエラー<E{code}>が出ます"),
            ("レポートをPDFにエクスポートするたびに{product}がフリーズして終了します。",
             "保存すると「エラー<E{code}>：ファイルを書き込めません」と表示されます。"),
            ("Windows 11でバージョン4.2を使用", "10MBを超えるファイルで発生", "スクリーンショットを添付"),
            ("詳細をありがとうございます。開発チームが再現し、次のリリースで修正されます。",
             "保存時のエラーE{code}を修正したバージョン4.3に更新してください。"),
            ("エクスポートエラーの対処法", "エクスポート中にアプリが落ちる場合は、アプリを更新し、10MBを超える"
             "ファイルを分割して、画面のエラーコードをお知らせください。")),
    }),
    "performance": Topic(("performance",), "Incident", {
        "en": Phrases(
            ("Dashboard is extremely slow", "Requests time out since the update"),
            ("Opening the dashboard in {product} takes more than a minute for our team.",
             "Since yesterday's update about half of our API requests end in a timeout."),
            ("About 40 users affected", "Region: Asia-Pacific", "Started around 9:00"),
            ("We found a slow database query and deployed a fix; load times should be back to normal.",
             "The timeouts were caused by an overloaded node in your region. It was replaced."),
            ("Improving dashboard speed", "Limit widgets to the last 90 days and archive old projects to keep "
             "dashboards loading in under three seconds.")),
        "ko": Phrases(
            ("대시보드가 너무 느립니다", "업데이트 이후 요청 시간 초과"),
            ("{product}에서 대시보드를 여는 데 1분 넘게 걸립니다.",
             "어제 업데이트 이후 API 요청의 절반 정도가 시간 초과로 끝납니다."),
            ("약 40명의 사용자가 영향 받음", "지역: 아시아 태평양", "오전 9시쯤부터 시작됨"),
            ("느린 데이터베이스 쿼리를 찾아 수정 배포했습니다. 이제 로딩 속도가 정상으로 돌아올 것입니다.",
             "고객님 지역의 과부하 노드 때문에 시간 초과가 발생했으며 노드를 교체했습니다."),
            ("대시보드 속도 개선 방법", "위젯 기간을 최근 90일로 제한하고 오래된 프로젝트를 보관하면 "
             "대시보드가 3초 안에 열립니다.")),
        "ja": Phrases(
            ("ダッシュボードが非常に遅いです", "アップデート以降リクエストがタイムアウトします"),
            ("{product}のダッシュボードを開くのに1分以上かかります。",
             "昨日のアップデート以降、APIリクエストの約半分がタイムアウトします。"),
            ("約40人のユーザーに影響", "地域：アジア太平洋", "9時頃から発生"),
            ("遅いデータベースクエリを特定し、修正をデプロイしました。読み込み速度は正常に戻るはずです。",
             "お客様の地域の過負荷ノードが原因でした。ノードを交換しました。"),
            ("ダッシュボードを速くする方法", "ウィジェットの期間を直近90日に絞り、古いプロジェクトをアーカイブすると"
             "3秒以内に表示されます。")),
    }),
    "integration": Topic(("integration", "api"), "Question", {
        "en": Phrases(
            ("Webhook stopped firing", "Slack integration does not post messages"),
            ("Our webhook to {product} stopped firing after we rotated the API key.",
             "The Slack integration is connected but no messages appear in the channel."),
            ("Endpoint returns 200 when called by hand", "API key rotated on Monday", "Channel: #support-alerts"),
            ("Webhooks are signed with the old key until you save the integration again; please re-save it.",
             "The Slack app lost its permission to the channel. Reconnect it from Settings > Integrations."),
            ("Setting up webhooks", "Create the webhook under Settings > Integrations, copy the signing secret "
             "and verify the signature of every request.")),
        "ko": Phrases(
            ("웹훅이 동작하지 않습니다", "슬랙 연동이 메시지를 보내지 않습니다"),
            ("API 키를 교체한 뒤로 {product} 웹훅이 호출되지 않습니다.",
             "슬랙 연동은 연결되어 있지만 채널에 메시지가 올라오지 않습니다."),
            ("직접 호출하면 200 응답", "월요일에 API 키 교체", "채널: #support-alerts"),
            ("연동 설정을 다시 저장하기 전까지 웹훅은 이전 키로 서명됩니다. 다시 저장해 주세요.",
             "슬랙 앱이 채널 권한을 잃었습니다. 설정 > 연동에서 다시 연결해 주세요."),
            ("웹훅 설정 방법", "설정 > 연동에서 웹훅을 만들고 서명 비밀 값을 복사한 뒤 모든 요청의 서명을 "
             "확인하세요.")),
        "ja": Phrases(
            ("Webhookが動作しなくなりました", "Slack連携でメッセージが投稿されません"),
            ("APIキーを更新してから{product}のWebhookが呼ばれなくなりました。",
             "Slack連携は接続済みですが、チャンネルにメッセージが表示されません。"),
            ("手動で呼ぶと200が返る", "月曜日にAPIキーを更新", "チャンネル：#support-alerts"),
            ("連携設定を保存し直すまでWebhookは古いキーで署名されます。再保存してください。",
             "Slackアプリがチャンネルの権限を失っています。設定 > 連携から再接続してください。"),
            ("Webhookの設定方法", "設定 > 連携でWebhookを作成し、署名シークレットをコピーして、すべての"
             "リクエストの署名を検証してください。")),
    }),
    "account": Topic(("account", "privacy"), "Question", {
        "en": Phrases(
            ("Please delete my account and data", "How do I change my e-mail address?"),
            ("I no longer use {product}; please delete my account and all personal data.",
             "I changed jobs and need to move my account to a new e-mail address."),
            ("Account e-mail on file", "No active subscription", "Requested under GDPR"),
            ("Your account and personal data were deleted; you will receive a confirmation e-mail.",
             "I updated the e-mail address on your account; please confirm it via the link we sent."),
            ("Managing your account data", "Change your e-mail under Profile, download your data under Privacy, "
             "and request deletion from the same page.")),
        "ko": Phrases(
            ("계정과 개인정보를 삭제해 주세요", "이메일 주소를 어떻게 바꾸나요?"),
            ("더 이상 {product}을 사용하지 않으니 계정과 모든 개인정보를 삭제해 주세요.",
             "이직을 해서 계정을 새 이메일 주소로 옮겨야 합니다."),
            ("등록된 계정 이메일", "활성 구독 없음", "개인정보 보호법에 따른 요청"),
            ("계정과 개인정보가 삭제되었으며 확인 이메일을 보내 드립니다.",
             "계정의 이메일 주소를 변경했습니다. 보내 드린 링크로 확인해 주세요."),
            ("계정 데이터 관리", "프로필에서 이메일을 변경하고, 개인정보 메뉴에서 데이터를 내려받거나 삭제를 "
             "요청할 수 있습니다.")),
        "ja": Phrases(
            ("アカウントとデータを削除してください", "メールアドレスの変更方法を教えてください"),
            ("{product}はもう使っていないので、アカウントとすべての個人データを削除してください。",
             "転職したため、アカウントを新しいメールアドレスに移したいです。"),
            ("登録済みのメールアドレス", "有効なサブスクリプションなし", "個人情報保護法に基づく依頼"),
            ("アカウントと個人データを削除しました。確認メールをお送りします。",
             "アカウントのメールアドレスを変更しました。お送りしたリンクから確認してください。"),
            ("アカウントデータの管理", "プロフィールでメールアドレスを変更し、プライバシー画面でデータのダウンロードや"
             "削除依頼ができます。")),
    }),
}

GREETINGS = {"en": "Hello,", "ko": "안녕하세요,", "ja": "お世話になっております。"}
CLOSINGS = {"en": "Thanks & best regards,", "ko": "감사합니다.", "ja": "よろしくお願いいたします。"}
TRIED = {"en": "What I tried:", "ko": "시도해 본 것:", "ja": "試したこと："}
ORDER_LABEL = {"en": "Order number", "ko": "주문번호", "ja": "注文番号"}
FOLLOW_UPS = {
    "en": ("Any update on this?", "It happened again today.", "Thanks, that solved it!"),
    "ko": ("진행 상황이 있을까요?", "오늘 또 같은 문제가 발생했습니다.", "감사합니다. 해결되었습니다!"),
    "ja": ("その後いかがでしょうか？", "今日また発生しました。", "ありがとうございます。解決しました！"),
}
NOTES = {
    "en": ("Escalated to tier 2.", "Customer is on the Pro plan."),
    "ko": ("2차 지원팀으로 이관함.", "프로 요금제 고객임."),
    "ja": ("二次サポートにエスカレーション済み。", "Proプランのお客様。"),
}
NAMES = {
    "en": ("Emma Johnson", "Liam Smith", "Olivia Brown", "Noah Davis"),
    "ko": ("김민준", "이서연", "박지훈", "최수아"),
    "ja": ("佐藤 花子", "鈴木 一郎", "高橋 美咲", "田中 健"),
}
PRODUCTS = ("Streamdesk Cloud", "Streamdesk Mobile", "Streamdesk Analytics", "Streamdesk POS")
CATEGORY_NAMES = {"en": "Help Center", "ko": "고객 지원 센터", "ja": "ヘルプセンター"}
FOLDER_NAMES = {"en": ("FAQ", "Guides", "Policies"), "ko": ("자주 묻는 질문", "사용 가이드", "정책"),
                "ja": ("よくある質問", "ガイド", "ポリシー")}
