"""Webhook payloads taken from each provider's public documentation (URL above each one).

Where a documented sample would be refused for reasons outside the mapping (a timestamp from
2009 is fine; one in 1974 is not), the change is noted next to it.
"""

from __future__ import annotations

# https://developers.hubspot.com/docs/api/webhooks (section "Webhook payloads")
HUBSPOT_EVENTS = [
    {"objectId": 1246965, "propertyName": "lifecyclestage", "propertyValue": "subscriber",
     "changeSource": "ACADEMY", "eventId": 3816279340, "subscriptionId": 25, "portalId": 33,
     "appId": 1160452, "occurredAt": 1462216307945, "subscriptionType": "contact.propertyChange",
     "attemptNumber": 0},
    {"objectId": 1246978, "changeSource": "IMPORT", "eventId": 3816279480, "subscriptionId": 22,
     "portalId": 33, "appId": 1160452, "occurredAt": 1462216307945,
     "subscriptionType": "contact.creation", "attemptNumber": 0},
]

# https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
# (sample payload; the sample repeats one sg_event_id, here each event has its own)
SENDGRID_EVENTS = [
    {"email": "example@test.com", "timestamp": 1513299569,
     "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>", "event": "processed",
     "category": "cat facts", "sg_event_id": "rbtnWrG1DVDGGGFHFyun0A==",
     "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000000"},
    {"email": "example@test.com", "timestamp": 1513299569,
     "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>", "event": "delivered",
     "category": "cat facts", "sg_event_id": "rWVYmVk90MjZJ9iohOBa3w==",
     "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000000",
     "response": "250 OK"},
    {"email": "Example@Test.com", "timestamp": 1513299569, "event": "click",
     "category": "cat facts", "sg_event_id": "kCAi1KttyQdEKHhdC-nuEA==",
     "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000000",
     "useragent": "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; "
                  ".NET CLR 2.0.50727)",
     "ip": "255.255.255.255", "url": "http://www.sendgrid.com/"},
    {"email": "example@test.com", "timestamp": 1513299569, "event": "bounce",
     "category": "cat facts", "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==",
     "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000000",
     "reason": "500 unknown recipient", "status": "5.0.0", "type": "bounce"},
    {"email": "example@test.com", "timestamp": 1513299569, "event": "group_unsubscribe",
     "category": "cat facts", "sg_event_id": "ahSCB7xYcXFb-hEaawsPRw==",
     "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000000",
     "asm_group_id": 10},
]

# https://mailchimp.com/developer/transactional/docs/webhooks/ (message event format)
MANDRILL_SEND = {
    "event": "send",
    "msg": {"ts": 1365109999, "subject": "This an example webhook message",
            "email": "example.webhook@mandrillapp.com",
            "sender": "example.sender@mandrillapp.com", "tags": ["webhook-example"],
            "opens": [], "clicks": [], "state": "sent", "metadata": {"user_id": 111},
            "_id": "exampleaaaaaaaaaaaaaaaaaaaaaaaaa", "_version": "exampleaaaaaaaaaaaaaaa"},
    "_id": "exampleaaaaaaaaaaaaaaaaaaaaaaaaa",
    "ts": 1365109999,
}
MANDRILL_HARD_BOUNCE = {
    "event": "hard_bounce",
    "msg": {"ts": 1365109999, "subject": "This an example webhook message",
            "email": "example.webhook@mandrillapp.com",
            "sender": "example.sender@mandrillapp.com", "tags": ["webhook-example"],
            "state": "bounced", "metadata": {"user_id": 111},
            "_id": "exampleaaaaaaaaaaaaaaaaaaaaaaaaa", "_version": "exampleaaaaaaaaaaaaaaa",
            "bounce_description": "bad_mailbox", "bgtools_code": 10,
            "diag": "smtp;550 5.1.1 The email account that you tried to reach does not exist."},
    "_id": "exampleaaaaaaaaaaaaaaaaaaaaaaaaa",
    "ts": 1365109999,
}

# https://mailchimp.com/developer/marketing/guides/sync-audience-data-webhooks/
MAILCHIMP_SUBSCRIBE = [
    ("type", "subscribe"), ("fired_at", "2009-03-26 21:35:57"), ("data[id]", "8a25ff1d98"),
    ("data[list_id]", "a6b5da1054"), ("data[email]", "api@mailchimp.com"),
    ("data[email_type]", "html"), ("data[merges][EMAIL]", "api@mailchimp.com"),
    ("data[merges][FNAME]", "Mailchimp"), ("data[merges][LNAME]", "API"),
    ("data[merges][INTERESTS]", "Group1,Group2"), ("data[ip_opt]", "10.20.10.30"),
    ("data[ip_signup]", "10.20.10.30"),
]
MAILCHIMP_UNSUBSCRIBE = [
    ("type", "unsubscribe"), ("fired_at", "2009-03-26 21:40:57"), ("data[action]", "unsub"),
    ("data[reason]", "manual"), ("data[id]", "8a25ff1d98"), ("data[list_id]", "a6b5da1054"),
    ("data[email]", "api+unsub@mailchimp.com"), ("data[email_type]", "html"),
    ("data[merges][EMAIL]", "api+unsub@mailchimp.com"), ("data[merges][FNAME]", "Mailchimp"),
    ("data[merges][LNAME]", "API"), ("data[merges][INTERESTS]", "Group1,Group2"),
    ("data[ip_opt]", "10.20.10.30"), ("data[campaign_id]", "cb398d21d2"),
]
MAILCHIMP_CLEANED = [
    ("type", "cleaned"), ("fired_at", "2009-03-26 22:01:00"), ("data[list_id]", "a6b5da1054"),
    ("data[campaign_id]", "4fjk2ma9xd"), ("data[reason]", "hard"),
    ("data[email]", "api+cleaned@mailchimp.com"),
]
MAILCHIMP_UPEMAIL = [
    ("type", "upemail"), ("fired_at", "2009-03-26 22:15:09"), ("data[list_id]", "a6b5da1054"),
    ("data[new_id]", "51da8c3259"), ("data[new_email]", "api+new@mailchimp.com"),
    ("data[old_email]", "api+old@mailchimp.com"),
]
MAILCHIMP_CAMPAIGN = [
    ("type", "campaign"), ("fired_at", "2009-03-26 22:15:09"), ("data[id]", "5aa2102003"),
    ("data[subject]", "Test Campaign Subject"), ("data[status]", "sent"), ("data[reason]", ""),
    ("data[list_id]", "a6b5da1054"),
]

# https://developers.facebook.com/docs/messenger-platform/reference/webhook-events/messages
# and .../messaging_postbacks, .../message-reactions, .../message-reads (ids filled in; the
# postback sample's timestamp 1527459824 is in seconds where Meta sends milliseconds)
META_MESSAGES = {
    "object": "page",
    "entry": [{"id": "107070864419347", "time": 1583173667623, "messaging": [
        {"sender": {"id": "3171290739668290"}, "recipient": {"id": "107070864419347"},
         "timestamp": 1583173666767,
         "message": {"mid": "m_toDnmD9pemNxVEmLNaNHUH0NDLaVWmnLlENAPUVPtu4YnlZF",
                     "text": "This is a text message"}},
        {"sender": {"id": "3171290739668290"}, "recipient": {"id": "107070864419347"},
         "timestamp": 1527459824000,
         "postback": {"mid": "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8",
                      "title": "Talk to an agent", "payload": "TALK_TO_AGENT"}},
        {"sender": {"id": "3171290739668290"}, "recipient": {"id": "107070864419347"},
         "timestamp": 1458668856463,
         "reaction": {"reaction": "love", "emoji": "\u2764\ufe0f", "action": "react",
                      "mid": "m_toDnmD9pemNxVEmLNaNHUH0NDLaVWmnLlENAPUVPtu4YnlZF"}},
        {"sender": {"id": "3171290739668290"}, "recipient": {"id": "107070864419347"},
         "timestamp": 1458668856463, "read": {"watermark": 1458668856253}},
    ]}],
}

# https://developers.zalo.me/docs/official-account/webhook/tin-nhan/su-kien-nguoi-dung-gui-tin-nhan-van-ban
# and .../su-kien-nguoi-dung-quan-tam (the documented timestamp "154390853474" reads as
# 1974 in milliseconds; the tests put a current time there)
ZALO_USER_SEND_TEXT = {
    "app_id": "360846524940903967", "user_id_by_app": "552177279717587730",
    "event_name": "user_send_text", "timestamp": "1543908534740",
    "sender": {"id": "246845883529197922"}, "recipient": {"id": "388613280878808645"},
    "message": {"text": "message", "msg_id": "96d3cdf3af150460909"},
}
ZALO_FOLLOW = {
    "oa_id": "388613280878808645", "follower": {"id": "246845883529197922"},
    "user_id_by_app": "552177279717587730", "event_name": "follow",
    "source": "testing_webhook", "app_id": "360846524940903967",
    "timestamp": "1543908534740",
}

# https://shopify.dev/docs/api/admin-rest/latest/resources/webhook (orders/create sample,
# shortened to the fields the mapping reads plus a few neighbours)
SHOPIFY_ORDER = {
    "id": 820982911946154508, "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "app_id": None, "browser_ip": None, "buyer_accepts_marketing": True,
    "cancel_reason": "customer", "cancelled_at": "2021-12-31T19:00:00-05:00",
    "closed_at": None, "confirmed": False, "contact_email": "jon@example.com",
    "created_at": "2021-12-31T19:00:00-05:00", "currency": "USD",
    "current_total_price": "398.00", "email": "jon@example.com",
    "financial_status": "voided", "fulfillment_status": "pending", "name": "#9999",
    "order_number": 1000, "phone": None, "processed_at": "2021-12-31T19:00:00-05:00",
    "subtotal_price": "388.00", "total_price": "403.00", "total_tax": "0.00",
    "updated_at": "2021-12-31T19:00:00-05:00",
    "customer": {"id": 115310627314723954, "email": "john@example.com", "first_name": "John",
                 "last_name": "Smith", "phone": None},
    "line_items": [
        {"id": 866550311766439020, "name": "IPod Nano - 8GB", "price": "199.00", "quantity": 1,
         "sku": "IPOD2008PINK"},
        {"id": 141249953214522974, "name": "IPod Nano - 8GB", "price": "199.00", "quantity": 1,
         "sku": "IPOD2008PINK"},
    ],
    "refunds": [],
    "shipping_address": {"first_name": "Steve", "address1": "123 Shipping Street",
                         "phone": "555-555-SHIP", "city": "Shippington", "country": "US"},
}

# https://docs.haravan.com/docs/tutorials/webhooks/private-webhook/ and the order resource
# (Haravan orders follow Shopify's fields; a VND order with a Vietnamese phone only)
HARAVAN_ORDER = {
    "id": 1019712345, "email": "", "phone": "0909 123 456", "currency": "VND",
    "total_price": 450000.0, "subtotal_price": 420000.0, "financial_status": "paid",
    "fulfillment_status": "notfulfilled", "name": "#1042", "order_number": "#1042",
    "created_at": "2026-11-20T02:30:00Z", "updated_at": "2026-11-20T02:35:00Z",
    "cancelled_at": None, "gateway": "COD",
    "customer": {"id": 1008977, "email": None, "phone": "0909123456", "first_name": "Lan"},
    "line_items": [{"id": 1, "sku": "AO-123", "quantity": 1, "price": 420000.0}],
}
