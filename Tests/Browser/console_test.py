#!/usr/bin/env python3
"""Browser tests of the Coffer console: Debian's chromium driven by Selenium over loopback.

Usage: console_test.py PATH/TO/coffer [--database URL]
Starts `coffer serve --demo` on a free port with a fresh data directory, then walks through the console as a customer,
a member without the finance permission, and an operator. Each test saves a screenshot under
.build/browser-screenshots/ (pass --screenshots DIR to change) so that a person can look at the pages.
"""
import argparse, json, os, re, shutil, socket, struct, subprocess, sys, tempfile, time, traceback, urllib.parse, urllib.request, zlib

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

parser = argparse.ArgumentParser()
parser.add_argument("coffer")
parser.add_argument("--database", default=None)
parser.add_argument("--screenshots", default=".build/browser-screenshots")
args = parser.parse_args()
os.makedirs(args.screenshots, exist_ok=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(width, height, rgb):
    """A small real PNG (the server checks receipts by content)."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Interop"))
from interop_keys import key_pair  # noqa: E402


class WeChatGateway:
    """The loopback WeChat Pay gateway of the interop tests (wechatpayv3), and a channels file that points Coffer at it,
    with the seeds' fee rule (0.6 % above 200.00) so that the order page shows a fee."""
    api_v3_key = "0123456789abcdefghijklmnopqrstuv"

    def __init__(self, folder):
        merchant_private, merchant_public = key_pair()
        platform_private, platform_public = key_pair()
        def write(name, text):
            path = os.path.join(folder, name)
            with open(path, "w") as f:
                f.write(text)
            return path
        settings = write("fake.json", json.dumps({
            "merchant_id": "1900000001", "app_id": "wxd678efh567hg6787", "merchant_public_pem": merchant_public,
            "platform_private_pem": platform_private, "platform_serial": "PLATFORM-SERIAL-1", "apiv3_key": self.api_v3_key}))
        fake = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Interop", "wechatpay_fake.py")
        self.proc = subprocess.Popen([sys.executable, fake, settings], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.base = "http://127.0.0.1:%s" % self.proc.stdout.readline().split()[1]
        self.channels_file = write("channels.json", json.dumps({
            "wechatpay": {"merchantId": "1900000001", "appId": "wxd678efh567hg6787", "merchantSerialNo": "MERCHANT-SERIAL-1",
                          "merchantPrivateKeyFile": write("merchant.pem", merchant_private),
                          "apiV3KeyFile": write("apiv3.key", self.api_v3_key), "platformSerialNo": "PLATFORM-SERIAL-1",
                          "platformPublicKeyFile": write("platform.pem", platform_public), "baseURL": self.base,
                          "notifyURL": "http://127.0.0.1/v1/channels/wechatpay/notifications"},
            "fees": {"wechatpay": {"above": "200.00", "rateBasisPoints": 60}}}))

    def notification(self, out_trade_no):
        req = urllib.request.Request(self.base + "/fake/pay", method="POST", data=json.dumps(
            {"out_trade_no": out_trade_no, "timestamp": int(time.time())}).encode())
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.kill()


class Server:
    def __init__(self, channels_file=None):
        self.data = tempfile.mkdtemp(prefix="coffer-browser-")
        self.port = free_port()
        # JSON log lines: the test command greps them for secrets (scripts/check-logs.py) when COFFER_LOG_DIR is set.
        cmd = [args.coffer, "serve", "--demo", "--port", str(self.port), "--data-dir", self.data, "--log-format", "json"]
        if channels_file:
            cmd += ["--channels-file", channels_file]
        if args.database:
            cmd += ["--database", args.database]
        self.log = open(os.path.join(self.data, "serve.log"), "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        text = ""
        for _ in range(300):
            self.log.seek(0)
            text = self.log.read()
            if "demo owner key:" in text:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not start:\n" + text)
        self.base = "http://localhost:%d" % self.port
        self.customer = re.search(r"^demo customer login \(console /login\): (\S+) / (\S+)$", text, re.M).groups()
        self.operator = re.search(r"^demo operator login \(desk /desk/login\): (\S+) / (\S+)$", text, re.M).groups()
        self.platform_key = re.search(r"^platform key: (\S+)$", text, re.M).group(1)
        self.account = re.search(r"^demo account: (\S+)$", text, re.M).group(1)
        # The demo account comes with a month of postpaid usage and its deductions (the bills pages read it); the wallet
        # tests below start from an empty wallet, so they use an account of their own with the demo's name.
        self.demo_customer, self.demo_account = self.customer, self.account
        password = "browser-" + os.urandom(6).hex()
        email = "browser-%s@example.com" % os.urandom(4).hex()
        created = self.api("POST", "/v1/accounts", {
            "type": "enterprise", "entityName": "示例云科技有限公司 (Demo Cloud Co.)", "taxId": "91310000MA1FL8XQ30",
            "contactEmail": email, "owner": {"email": email, "name": "Browser Owner", "password": password}})
        self.customer, self.account = (email, password), created["account"]["id"]

    def api(self, method, path, body=None, key=None):
        req = urllib.request.Request(self.base + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": "Bearer " + (key or self.platform_key),
                                              "Content-Type": "application/json",
                                              "Idempotency-Key": "browser-%f" % time.time()})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        if os.environ.get("COFFER_LOG_DIR"):
            shutil.copy(os.path.join(self.data, "serve.log"),
                        os.path.join(os.environ["COFFER_LOG_DIR"], "browser-%s-%d.log" % ("postgres" if args.database else "sqlite", self.port)))
        shutil.rmtree(self.data, ignore_errors=True)


def browser(lang="zh-CN"):
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900",
              "--lang=" + lang]:
        options.add_argument(a)
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    d = webdriver.Chrome(options=options, service=service)
    d.set_page_load_timeout(30)
    return d


gateway_dir = tempfile.mkdtemp(prefix="coffer-wechat-")
gateway = WeChatGateway(gateway_dir)
server = Server(gateway.channels_file)
results = []
shots = []


def shot(driver, name):
    path = os.path.join(args.screenshots, name + ".png")
    # The whole page, not only the window: stretch the window to the document's height first.
    height = driver.execute_script("return Math.max(document.body.scrollHeight, 600)")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, min(height + 120, 4000))
    driver.save_screenshot(path)
    driver.set_window_size(width, 900)
    shots.append(path)


def test(name):
    def wrap(fn):
        started = time.time()
        try:
            fn()
            results.append((name, None))
            print("ok   %s (%.1fs)" % (name, time.time() - started), flush=True)
        except Exception:
            results.append((name, traceback.format_exc()))
            try:
                customer.save_screenshot(os.path.join(args.screenshots, "FAILED-" + re.sub(r"\W+", "-", name)[:40] + ".png"))
                print(customer.current_url, customer.page_source[:3000])
            except Exception:
                pass
            print("FAIL %s\n%s" % (name, traceback.format_exc()), flush=True)
        return fn
    return wrap


def click(driver, element):
    """Clicks something that loads a new page, and waits until the new page has replaced the old one. The old page is
    marked with a property that a new document does not have; chromedriver's own staleness check can fail with "Node with
    given id does not belong to the document" in the middle of a navigation."""
    driver.execute_script("window.__cofferOldPage = true")
    element.click()
    def new_page(d):
        try:
            return d.execute_script("return !window.__cofferOldPage && document.readyState === 'complete'")
        except WebDriverException:
            return False   # between documents
    WebDriverWait(driver, 15).until(new_page)


def sign_in(driver, email, password, desk=False):
    driver.get(server.base + ("/desk/login" if desk else "/login"))
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    click(driver, driver.find_element(By.CSS_SELECTOR, "button[type=submit].primary"))


CATALOG_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Sources", "CofferWeb", "Resources", "locales")
# Data — ids, amounts, names, memos, table cells — may be in any language; the page's own words may not.
PAGE_TEXT = """
    const body = document.body.cloneNode(true);
    body.querySelectorAll('td, code, pre, option, textarea, .data, a.lang, svg, .user').forEach(e => e.remove());
    return body.innerText;"""
WRAPPED = """
    const bad = [];
    for (const el of document.querySelectorAll('button, a.button, label, .tabs a, nav.side a')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || el.closest('[hidden]')) continue;
      // The lines of the label's own text (a checkbox beside it sits at its own height and is not a line).
      const tops = new Set();
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      while (walker.nextNode()) {
        if (!walker.currentNode.textContent.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(walker.currentNode);
        for (const x of range.getClientRects()) if (x.width > 0) tops.add(Math.round(x.top));
      }
      if (el.tagName !== 'LABEL' && tops.size > 1) bad.push(el.outerHTML.slice(0, 120));
      if (el.tagName === 'LABEL' && el.textContent.trim().length <= 6 && tops.size > 1) bad.push(el.outerHTML.slice(0, 120));
    }
    return bad;"""


def layout_problems(driver, home, pages):
    """Each page at 1024, 1440 and 1920 px in English and Chinese: no control wraps its label; an English page has no
    Chinese outside data, a Chinese page no catalog key. Leaves the driver in Chinese at 1280 px."""
    with open(os.path.join(CATALOG_ROOT, "zh.json"), encoding="utf-8") as f:
        keys = [k for k in json.load(f) if "_" in k]
    problems = []
    for lang in ["en", "zh"]:
        driver.get(server.base + "/lang/%s?back=%s" % (lang, urllib.parse.quote(home, safe="")))
        for width in [1024, 1440, 1920]:
            driver.set_window_size(width, 900)
            for page in pages:
                driver.get(server.base + page)
                for html in driver.execute_script(WRAPPED):
                    problems.append("%s %d %s: wraps: %s" % (lang, width, page, html))
                if width != 1024:
                    continue
                words = driver.execute_script(PAGE_TEXT)
                if lang == "en":
                    cjk = re.findall(r"[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]+", words)
                    if cjk:
                        problems.append("en %s: Chinese text %s" % (page, cjk[:5]))
                else:
                    found = [k for k in keys if re.search(r"(?<![\w.])" + re.escape(k) + r"(?![\w])", words)]
                    if found:
                        problems.append("zh %s: catalog keys %s" % (page, found[:5]))
    driver.set_window_size(1280, 900)
    driver.get(server.base + "/lang/zh?back=" + urllib.parse.quote(home, safe=""))
    return problems


def text(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def status_with_cookie(driver, path, lang="en"):
    """The HTTP status and body of a page fetched with the browser's session cookie (Selenium cannot see status codes
    or downloads), asking for `lang` (the browser's language cookie, when it has one, wins as in the browser)."""
    cookie = driver.get_cookie("coffer_session")
    lang_cookie = driver.get_cookie("coffer_lang")
    req = urllib.request.Request(server.base + path, headers={
        "Cookie": "coffer_session=" + cookie["value"] + ("; coffer_lang=" + lang_cookie["value"] if lang_cookie else ""),
        "Accept": "text/html", "Accept-Language": lang})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


customer = browser("zh-CN")
try:
    @test("console sign-in: the demo credentials printed at start sign in; a wrong password is refused")
    def _():
        sign_in(customer, server.customer[0], "not-the-password")
        assert "邮箱或密码错误" in text(customer, ".error"), customer.page_source[:500]
        shot(customer, "sign-in-zh")
        sign_in(customer, *server.customer)
        assert customer.current_url.endswith("/overview"), customer.current_url
        assert customer.title.startswith("账户总览"), customer.title
        cookie = customer.get_cookie("coffer_session")
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax", cookie

    @test("R9 sandbox recharge in the browser: the order page, the test-channel payment, the balance changes")
    def _():
        customer.get(server.base + "/recharge")
        assert "测试通道" in customer.page_source
        amount = customer.find_element(By.ID, "amount")
        amount.clear()
        amount.send_keys("100.00")
        customer.find_element(By.ID, "ch-sandbox").click()
        shot(customer, "recharge-zh")
        click(customer, customer.find_element(By.CSS_SELECTOR, "form[action='/recharge'] button[type=submit]"))
        assert "/recharge/rch_" in customer.current_url, customer.current_url
        assert text(customer, "#state") == "待支付"
        shot(customer, "recharge-waiting-zh")
        click(customer, customer.find_element(By.ID, "sandbox-pay"))
        assert text(customer, "#state") == "已到账", text(customer, "#state")
        assert text(customer, "#new-balance") == "¥100.00", text(customer, "#new-balance")
        customer.get(server.base + "/overview")
        assert text(customer, "#balance") == "¥100.00"
        assert text(customer, "#available") == "¥100.00"

    @test("R6 the recharge form offers the last amount")
    def _():
        customer.get(server.base + "/recharge")
        assert customer.find_element(By.ID, "amount").get_attribute("value") == "100.00"
        assert "¥100.00" in text(customer, "#amount-hint")

    @test("W11 transaction records: filter by type and date, export CSV")
    def _():
        server.api("POST", "/v1/accounts/%s/gifts" % server.account, {"amount": "8.88", "memo": "welcome gift"})
        customer.get(server.base + "/transactions")
        rows = customer.find_elements(By.CSS_SELECTOR, "#records tbody tr")
        assert len(rows) == 2, len(rows)
        Select(customer.find_element(By.ID, "type")).select_by_value("recharge")
        today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
        customer.execute_script("document.getElementById('from').value = arguments[0];"
                                "document.getElementById('to').value = arguments[0];", today)
        click(customer, customer.find_element(By.ID, "filter"))
        types = [e.text for e in customer.find_elements(By.CSS_SELECTOR, "#records td.type")]
        assert types == ["充值"], types
        shot(customer, "transactions-zh")
        href = customer.find_element(By.ID, "export").get_attribute("href")
        assert "type=recharge" in href, href
        status, body = status_with_cookie(customer, href.replace(server.base, ""))
        assert status == 200, status
        lines = body.lstrip("\ufeff").strip().splitlines()
        # The console's download speaks the language of the request (here English): column names and record types from
        # the catalogs, not the API's stable codes.
        assert lines[0].startswith("Record,Time,Type,Amount"), lines[0]
        assert len(lines) == 2 and ",Recharge,100.00," in lines[1], lines

    @test("T1 remittance with a receipt, approved at the operator desk, is credited for the customer")
    def _():
        receipt = os.path.join(server.data, "receipt.png")
        with open(receipt, "wb") as f:
            f.write(png(320, 200, (40, 110, 200)))
        customer.get(server.base + "/remittance")
        # The 25-digit number reads in groups of four; the copy button copies it without the spaces.
        grouped = text(customer, "#dedicated")
        assert len(grouped.replace(" ", "")) == 25 and grouped.split(" ")[0] == grouped.replace(" ", "")[:4], grouped
        copy = customer.find_element(By.ID, "copy-dedicated")
        assert copy.is_displayed() and copy.get_attribute("data-copy") == grouped.replace(" ", "")
        for field, value in [("payerName", "示例云科技有限公司"), ("payerAccount", "6222020200001234567"),
                             ("payerBank", "工商银行上海分行"), ("r-amount", "2000.00"), ("bankSerial", "BS%d" % (time.time() * 1000))]:
            customer.find_element(By.ID, field).send_keys(value)
        customer.execute_script("document.getElementById('remittedOn').value = '2026-11-20'")
        customer.find_element(By.ID, "receipt").send_keys(receipt)
        click(customer, customer.find_element(By.CSS_SELECTOR, "form[action='/remittance'] button[type=submit]"))
        assert "汇款信息已提交" in text(customer, ".notice"), customer.page_source[:800]
        assert text(customer, ".remittance-state") == "审核中"
        shot(customer, "remittance-zh")

        desk = browser("zh-CN")
        try:
            sign_in(desk, *server.operator, desk=True)
            assert desk.current_url.endswith("/desk"), desk.current_url
            desk.get(server.base + "/desk/remittances")
            assert "¥2,000.00" in desk.page_source
            assert desk.find_element(By.CSS_SELECTOR, "img.receipt").get_attribute("naturalWidth") == "320"
            shot(desk, "desk-review-zh")
            click(desk, desk.find_element(By.CSS_SELECTOR, "button.approve"))
            assert "已通过" in text(desk, ".notice")
            # An operator is not a customer: the customer pages send the operator to the desk.
            desk.get(server.base + "/overview")
            assert desk.current_url.endswith("/desk"), desk.current_url
        finally:
            desk.quit()

        customer.get(server.base + "/remittance")
        assert text(customer, ".remittance-state") == "已入账"
        customer.get(server.base + "/overview")
        assert text(customer, "#balance") == "¥2,108.88", text(customer, "#balance")
        shot(customer, "overview-zh")

    @test("language switch: English is chosen, remembered, and money is formatted for it")
    def _():
        customer.get(server.base + "/overview")
        click(customer, customer.find_element(By.CSS_SELECTOR, "a.lang"))
        assert customer.title.startswith("Account overview"), customer.title
        assert text(customer, "#balance") == "¥2,108.88"
        customer.get(server.base + "/recharge")
        assert "Recharge" in customer.title
        shot(customer, "recharge-en")
        customer.get(server.base + "/overview")
        assert customer.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        shot(customer, "overview-en")
        customer.set_window_size(390, 844)
        shot(customer, "overview-en-phone")
        customer.set_window_size(1280, 900)
        click(customer, customer.find_element(By.CSS_SELECTOR, "a.lang"))
        assert customer.title.startswith("账户总览"), customer.title

    @test("W12 a member without the finance permission gets a 403 page on money pages")
    def _():
        email = "member-%d@demo.coffer.local" % server.port
        server.api("POST", "/v1/accounts/%s/users" % server.account,
                   {"email": email, "name": "Member", "role": "member", "password": "member-password-1"})
        member = browser("en-US")
        try:
            sign_in(member, email, "member-password-1")
            assert "No permission" in member.title, member.title
            shot(member, "member-403-en")
            for path in ["/overview", "/recharge", "/transactions", "/transactions.csv", "/remittance", "/users"]:
                status, body = status_with_cookie(member, path)
                assert status == 403, (path, status)
                assert "No permission" in body, path
        finally:
            member.quit()

    @test("R4 R5 WeChat Pay in the browser: the fee before paying, the QR image, the notification credits the amount only")
    def _():
        customer.get(server.base + "/lang/zh?back=/recharge")
        assert "0.6% 服务费" in text(customer, "label[for=ch-wechatpay]"), text(customer, "label[for=ch-wechatpay]")
        amount = customer.find_element(By.ID, "amount")
        amount.clear()
        amount.send_keys("300.00")
        customer.find_element(By.ID, "ch-wechatpay").click()
        click(customer, customer.find_element(By.CSS_SELECTOR, "form[action='/recharge'] button[type=submit]"))
        assert text(customer, "#fee") == "¥1.80" and text(customer, "#total") == "¥301.80", customer.page_source[:2000]
        qr = customer.find_element(By.CSS_SELECTOR, "img.qr")
        assert int(qr.get_attribute("naturalWidth")) >= 150, qr.get_attribute("naturalWidth")
        shot(customer, "recharge-wechat-qr-zh")
        recharge_id = customer.current_url.rsplit("/", 1)[1]
        note = gateway.notification(recharge_id)
        req = urllib.request.Request(server.base + "/v1/channels/wechatpay/notifications", method="POST",
                                     data=note["body"].encode(), headers=dict(note["headers"], **{"Content-Type": "application/json"}))
        with urllib.request.urlopen(req) as r:
            assert r.status in (200, 204), r.status
        # The page refreshes itself every 3 seconds while it waits.
        WebDriverWait(customer, 15).until(lambda d: d.find_element(By.ID, "state").text == "已到账")
        assert text(customer, "#new-balance") == "¥2,408.88", text(customer, "#new-balance")

    @test("B3 B4 B5 B6 bills in the browser: the demo's month, its chart, drill-down to lines, CSV, projects, the period switch; English too")
    def _():
        b = browser("zh-CN")
        try:
            sign_in(b, *server.demo_customer)
            # The jobs loop settles the demo's usage right after the start.
            for _ in range(30):
                b.get(server.base + "/bills")
                if text(b, "#bill-total") != "¥0.00":
                    break
                time.sleep(1)
            assert b.title.startswith("账单概览"), b.title
            assert text(b, "#bill-total") != "¥0.00" and text(b, "#bill-prepaid") == "¥0.00"
            assert b.find_element(By.ID, "bill-chart").tag_name == "svg"
            assert len(b.find_elements(By.CSS_SELECTOR, "#bill-products tbody tr")) == 4   # three products and the precision line
            assert "月度计费精度差异" in text(b, "#precision-line")
            assert "2027" in text(b, "#estimate") or "消费预估" in text(b, "#estimate")
            shot(b, "bills-zh")
            # The console's downloads speak the page's language (the API's files keep their stable names).
            status, body = status_with_cookie(b, "/bills.csv", lang="zh-CN")
            assert status == 200 and body.startswith("\ufeff产品编号,产品名称,应付金额"), (status, body[:80])
            status, body = status_with_cookie(b, "/bills/lines.csv", lang="zh-CN")
            assert status == 200 and body.startswith("\ufeff结算编号") and ",后付费," in body and ",postpaid," not in body, body[:200]
            status, body = status_with_cookie(b, "/transactions.csv", lang="zh-CN")
            assert status == 200 and body.startswith("\ufeff流水号,时间,类型"), body[:80]
            click(b, b.find_element(By.ID, "to-summary"))
            Select(b.find_element(By.ID, "by")).select_by_value("project")
            click(b, b.find_element(By.ID, "summary-show"))
            rows = b.find_elements(By.CSS_SELECTOR, "#bill-summary tbody tr")
            assert len(rows) == 2 and "官网 Website" in b.page_source, b.page_source[:2000]
            shot(b, "bill-summary-zh")
            b.get(server.base + "/bills/resources")
            assert len(b.find_elements(By.CSS_SELECTOR, "#bill-resources tbody tr")) == 4
            click(b, b.find_element(By.CSS_SELECTOR, "#bill-resources tbody tr a"))
            assert "/bills/lines" in b.current_url and len(b.find_elements(By.CSS_SELECTOR, "#bill-lines tbody tr")) > 0
            b.get(server.base + "/bills/lines")
            assert len(b.find_elements(By.CSS_SELECTOR, "#bill-lines tbody tr")) == 50 and b.find_element(By.ID, "lines-next")
            shot(b, "bill-lines-zh")
            # Projects: create, rename, move a resource.
            b.get(server.base + "/projects")
            b.find_element(By.ID, "project-name").send_keys("测试项目")
            click(b, b.find_element(By.ID, "create-project"))
            assert "项目已创建" in text(b, ".notice"), b.page_source[:1500]
            select = Select(b.find_element(By.ID, "assign-ins-web-2"))
            select.select_by_visible_text("测试项目")
            click(b, b.find_element(By.CSS_SELECTOR, "form[action='/resources/ins-web-2/project'] button"))
            assert "资源已移动" in text(b, ".notice")
            shot(b, "projects-zh")
            # The statistic period: the switch needs the confirmation box, then it is done once.
            b.get(server.base + "/bills")
            b.find_element(By.ID, "period-confirm").click()
            click(b, b.find_element(By.ID, "switch-period"))
            assert "已切换为计费周期" in text(b, ".notice") and text(b, "#current-period") == "计费周期"
            assert not b.find_elements(By.ID, "switch-period")
            # English.
            click(b, b.find_element(By.CSS_SELECTOR, "a.lang"))
            assert b.title.startswith("Bill overview"), b.title
            assert "Billing precision difference" in text(b, "#precision-line") and "Cloud server" in text(b, "#bill-products")
            assert text(b, "#current-period") == "Billing period"
            shot(b, "bills-en")
        finally:
            b.quit()

    @test("O1 C4 C6 C8 orders in the browser: tick the demo's two orders, pick the cash coupon (its threshold met by their sum), pay; coupons; English")
    def _():
        b = browser("zh-CN")
        try:
            sign_in(b, *server.demo_customer)
            b.get(server.base + "/orders?state=unpaid")
            assert b.title.startswith("订单"), b.title
            boxes = b.find_elements(By.CSS_SELECTOR, "#orders input[type=checkbox]")
            assert len(boxes) == 2, b.page_source[:2000]
            for box in boxes:
                box.click()
            shot(b, "orders-zh")
            click(b, b.find_element(By.ID, "checkout"))
            assert b.title.startswith("支付订单"), b.title
            labels = [l for l in b.find_elements(By.CSS_SELECTOR, "#offers label") if "现金券" in l.text]
            assert len(labels) == 1, b.page_source[:3000]
            b.find_element(By.ID, labels[0].get_attribute("for")).click()
            discount = [l for l in b.find_elements(By.CSS_SELECTOR, "#offers label") if "折扣券" in l.text][0]
            b.find_element(By.ID, discount.get_attribute("for")).click()
            click(b, b.find_element(By.ID, "update-preview"))
            # C4: a discount coupon never combines with a cash coupon; the page says so and offers no pay button.
            assert "折扣券不能与其他优惠券叠加使用" in text(b, "#refusal"), b.page_source[:3000]
            assert not b.find_elements(By.ID, "pay")
            discount = [l for l in b.find_elements(By.CSS_SELECTOR, "#offers label") if "折扣券" in l.text][0]
            b.find_element(By.ID, discount.get_attribute("for")).click()
            click(b, b.find_element(By.ID, "update-preview"))
            assert text(b, "#sum-due") == "¥360.00" and text(b, "#sum-coupon") == "¥50.00" and text(b, "#sum-wallet") == "¥310.00", text(b, "#summary")
            shot(b, "checkout-zh")
            click(b, b.find_element(By.ID, "pay"))
            assert "支付成功" in text(b, ".notice"), b.page_source[:1500]
            assert len(b.find_elements(By.CSS_SELECTOR, "#orders tr[data-state='paid']")) == 2
            b.get(server.base + "/coupons?state=used")
            assert "现金券" in text(b, "#coupons")
            b.get(server.base + "/coupons")
            assert "折扣券" in text(b, "#coupons")
            shot(b, "coupons-zh")
            click(b, b.find_element(By.CSS_SELECTOR, "a.lang"))
            assert b.title.startswith("Coupons"), b.title
            assert "Discount coupon" in text(b, "#coupons")
            b.get(server.base + "/orders")
            assert "Paid, being delivered" in text(b, "#orders")
            shot(b, "orders-en")
        finally:
            b.quit()

    @test("O3 O4 renewals in the browser: the demo's prepaid server, auto-renewal switched on, a manual renewal through the checkout")
    def _():
        b = browser("zh-CN")
        try:
            sign_in(b, *server.demo_customer)
            for _ in range(20):
                b.get(server.base + "/renewals")
                if b.find_elements(By.CSS_SELECTOR, "#terms tbody tr"):
                    break
                time.sleep(0.5)
            assert b.title.startswith("资源与续费"), b.title
            assert "vm-demo-1" in text(b, "#terms") and "运行中" in text(b, "#terms"), b.page_source[:2000]
            before = text(b, "#terms tbody tr td:nth-child(3)")
            click(b, b.find_element(By.ID, "auto-vm-demo-1"))
            assert "自动续费设置已更新" in text(b, ".notice") and "已开启" in text(b, "#terms")
            click(b, b.find_element(By.ID, "renew-vm-demo-1"))
            assert b.title.startswith("支付订单"), b.title
            click(b, b.find_element(By.ID, "pay"))
            assert "支付成功" in text(b, ".notice"), b.page_source[:1500]
            b.get(server.base + "/renewals")
            assert text(b, "#terms tbody tr td:nth-child(3)") != before, before
            shot(b, "renewals-zh")
            # O7: the unified expiry date, priced before confirming.
            b.find_element(By.ID, "unify-vm-demo-1").click()
            Select(b.find_element(By.ID, "unify-day")).select_by_value("1")
            click(b, b.find_element(By.ID, "unify-preview"))
            assert b.title.startswith("统一到期日"), b.page_source[:1500]
            assert text(b, "#unify-total").startswith("¥"), text(b, "#unify-total")
            shot(b, "unify-zh")
        finally:
            b.quit()

    @test("N2 the desk registers a webhook endpoint and sees the secret once")
    def _():
        op = browser("zh-CN")
        try:
            sign_in(op, *server.operator, desk=True)
            op.get(server.base + "/desk/webhooks")
            # A loopback port that refuses at once: the jobs loop's deliveries fail fast (no DNS, no timeout).
            op.find_element(By.ID, "w-url").send_keys("http://127.0.0.1:9/coffer-hook")
            click(op, op.find_element(By.ID, "register-webhook"))
            assert text(op, "#webhook-secret").startswith("whsec_"), op.page_source[:1500]
            op.get(server.base + "/desk/webhooks")
            assert "127.0.0.1:9" in text(op, "#endpoints") and not op.find_elements(By.ID, "webhook-secret")
            shot(op, "desk-webhooks-zh")
        finally:
            op.quit()

    @test("B2 the desk lists settlement runs and settles now")
    def _():
        op = browser("zh-CN")
        try:
            sign_in(op, *server.operator, desk=True)
            op.get(server.base + "/desk/settlements")
            before = len(op.find_elements(By.CSS_SELECTOR, "#runs tbody tr"))
            click(op, op.find_element(By.ID, "run-settlement"))
            assert "结算已完成" in text(op, ".notice"), op.page_source[:1500]
            assert len(op.find_elements(By.CSS_SELECTOR, "#runs tbody tr")) == before + 1
            shot(op, "desk-settlements-zh")
            # B3: a compensation for one of the demo account's cycles: back in the wallet, a negative line in the bill.
            op.get(server.base + "/desk/accounts/" + server.demo_account)
            op.find_element(By.ID, "c-amount").send_keys("0.01")
            op.find_element(By.ID, "c-reason").send_keys("故障补偿")
            click(op, op.find_element(By.ID, "compensate"))
            assert "补偿已入账" in text(op, ".notice"), op.page_source[:1500]
            assert "故障补偿" in text(op, "#compensations")
        finally:
            op.quit()

    @test("console layout at 1024, 1440 and 1920 px in both languages: no button wraps its label; English pages have no Chinese and Chinese pages no catalog keys outside data")
    def _():
        problems = layout_problems(customer, "/overview", ["/overview", "/recharge", "/remittance", "/codes", "/transactions", "/bills",
                                                           "/projects", "/orders", "/coupons", "/renewals", "/refund-records", "/users", "/audit"])
        customer.get(server.base + "/lang/zh?back=%2Foverview")
        assert not problems, "\n".join(problems[:40])

    @test("desk layout at 1024, 1440 and 1920 px in both languages: the same checks on every page of the operator desk")
    def _():
        op = browser()
        try:
            sign_in(op, *server.operator, desk=True)
            account = "/desk/accounts/" + server.demo_account
            problems = layout_problems(op, "/desk", ["/desk", account, account + "/orders", "/desk/remittances", "/desk/statements",
                                                     "/desk/codes", "/desk/refunds", "/desk/settlements", "/desk/webhooks", "/desk/audit",
                                                     "/desk/jobs"])
            assert not problems, "\n".join(problems[:40])
        finally:
            op.quit()

    @test("sign-out ends the session")
    def _():
        click(customer, customer.find_element(By.CSS_SELECTOR, "form[action='/logout'] button"))
        assert "/login" in customer.current_url
        assert text(customer, ".notice") in ("您已安全退出。", "You are signed out."), customer.page_source[:500]
        customer.get(server.base + "/overview")
        assert "/login" in customer.current_url, customer.current_url
finally:
    customer.quit()
    server.stop()
    gateway.stop()
    shutil.rmtree(gateway_dir, ignore_errors=True)

failed = [n for n, e in results if e]
print("browser: %d passed, %d failed; screenshots in %s" % (len(results) - len(failed), len(failed), args.screenshots))
sys.exit(1 if failed else 0)
